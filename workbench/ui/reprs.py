"""Text and HTML for the explore results: ``result_text`` and ``result_html`` draw each by the
``view`` its class names (``VIEWS``), and ``wb.inspect``'s facts are drawn here (``tables`` and
``diagnosis`` draw the others): one renderer, so the CLI, logs and JupyterLab show the same
things. Every value placed in HTML is escaped.
"""

from __future__ import annotations

import html
import math
import textwrap
from collections.abc import Callable
from itertools import accumulate
from typing import Any

from ..units import human_bytes
from .diagnosis import diagnosis_html, diagnosis_text
from .tables import advice_html, advice_text, preview_html, preview_text, stats_html, stats_text

__all__: list[str] = []

MAX_LINES = 40  # chunk boundaries drawn per axis; more are thinned (the count is still shown)
ORDERS = ("sequential", "block", "full")


def nbytes(n: float | None) -> str:
    """``1536`` -> ``'1.5 KiB'``; None (in memory) -> ``'-'``."""
    return "-" if n is None else human_bytes(n)


def _unit(a: Any) -> str:
    if a.unit == "array":
        return "in memory"
    rows = f"{a.unit_rows:,.1f}" if a.unit_rows < 10 else f"{a.unit_rows:,.0f}"
    return f"{a.unit} ({nbytes(a.unit_bytes)}, {rows} rows)"


def _storage(a: Any) -> str:
    return ", ".join(f"{k}={v}" for k, v in a.storage.items() if v not in (None, False))


def inspection_text(ins: Any) -> str:
    lines = [
        f"{ins.source}: {ins.title}",
        f"  costs for batch_size={ins.batch_size:,}; block order's unit: {ins.block_rows:,} rows",
    ]
    frac = ins.resident_fraction
    if frac is not None:
        res = sum(r["resident_bytes"] for r in ins.residency)
        tot = sum(r["total_bytes"] for r in ins.residency)
        lines.append(
            f"  page cache: {frac:.0%} resident ({nbytes(res)} of {nbytes(tot)} in "
            f"{len(ins.residency)} files)"
        )
    rows = [("column", "shape", "dtype", "in memory", "on disk", "read unit")]
    rows += [
        (a.name, str(a.shape), a.dtype, nbytes(a.logical_bytes), nbytes(a.disk_bytes), _unit(a))
        for a in ins.arrays
    ]
    lines += ["  " + line for line in _table(rows)]
    lines.append(
        f"  read amplification per batch of {ins.batch_size:,} (bytes decoded per byte used)"
    )
    amp = [("column", *ORDERS)] + [
        (n, *(f"{by[o].amplification:,.1f}" for o in ORDERS)) for n, by in ins.costs.items()
    ]
    lines += ["  " + line for line in _table(amp)]
    for a in ins.arrays:  # wrapped: a notebook shows 100 columns
        if _storage(a):
            lines.append(
                textwrap.fill(
                    _storage(a),
                    98,
                    initial_indent=f"  {a.name}: ",
                    subsequent_indent="      ",
                    break_on_hyphens=False,
                    break_long_words=False,
                )
            )
    if ins.shards:
        lines.append(
            f"  {len(ins.shards)} shards; rows {ins.shards[0]['rows']:,} (first) "
            f"to {ins.shards[-1]['rows']:,} (last)"
        )
    lines += [f"  note: {n}" for n in ins.notes]
    return "\n".join(lines)


def _table(rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]


def _cell(v: Any) -> str:
    return f"<td>{html.escape(str(v))}</td>"


def inspection_html(ins: Any) -> str:
    e = html.escape
    out = [
        f"<div class='workbench-inspect'><b>{e(ins.source)}</b>: {e(ins.title)}<br>"
        f"<small>costs for batch_size={ins.batch_size:,}; block order's unit "
        f"{ins.block_rows:,} rows</small>"
    ]
    out.append(
        "<table><tr><th>column</th><th>shape</th><th>dtype</th><th>in memory</th>"
        "<th>on disk</th><th>read unit</th><th>storage</th><th>chunks</th>"
        + "".join(f"<th>{o}</th>" for o in ORDERS)
        + "</tr>"
    )
    for a in ins.arrays:
        amp = ins.costs[a.name]
        out.append(
            "<tr>"
            + "".join(
                _cell(v)
                for v in (
                    a.name,
                    a.shape,
                    a.dtype,
                    nbytes(a.logical_bytes),
                    nbytes(a.disk_bytes),
                    _unit(a),
                    _storage(a),
                )
            )
            + f"<td>{chunk_svg(a)}</td>"
            + "".join(_cell(f"{amp[o].amplification:,.1f}×") for o in ORDERS)
            + "</tr>"
        )
    out.append(
        "</table><small>×: read amplification, bytes decoded per byte used, per batch "
        "(1× is ideal)</small>"
    )
    if ins.residency:
        frac = ins.resident_fraction or 0.0
        out.append(f"<div>page cache: <b>{frac:.0%}</b> resident</div><table>")
        for r in ins.residency[:20]:
            out.append(
                f"<tr><td><code>{e(r['path'])}</code></td>"
                f"<td>{r['resident_bytes'] / max(1, r['total_bytes']):.0%}</td>"
                f"<td>{strip_svg(r['strip'])}</td></tr>"
            )
        if len(ins.residency) > 20:
            out.append(f"<tr><td colspan=3>... and {len(ins.residency) - 20} more files</td></tr>")
        out.append("</table>")
    if ins.shards:
        out.append(
            f"<details><summary>{len(ins.shards)} shards</summary><table>"
            "<tr><th>shard</th><th>rows</th><th>bytes</th><th>in page cache</th></tr>"
        )
        for s in ins.shards[:50]:
            out.append(
                f"<tr><td>{s['index']}</td><td>{s['rows']:,}</td><td>{e(nbytes(s['bytes']))}"
                f"</td><td>{s.get('resident_fraction', 0):.0%}</td></tr>"
            )
        out.append("</table></details>")
    out += [f"<div><i>note:</i> {e(n)}</div>" for n in ins.notes]
    return "".join(out) + "</div>"


def chunk_svg(a: Any, size: int = 90) -> str:
    """The storage's cuts as a grid in the spirit of dask's array picture (rows down, columns
    across): chunks, row groups, shards, or the pages of a memory map; past ``MAX_LINES`` cuts an
    axis is thinned and its count written below."""
    rows, count = _row_cuts(a)
    cols = [c / sum(a.col_chunks) for c in accumulate(a.col_chunks)][:-1] if a.col_chunks else []
    height, width = size, (size if len(a.shape) > 1 else 24)
    parts = [
        f"<svg class='workbench-chunks' width='{size + 12}' height='{height + 16}'>",
        f"<rect x='1' y='1' width='{width}' height='{height}' fill='#ecb172' fill-opacity='0.6' "
        "stroke='#333'/>",
    ]
    for y in _thin(rows):
        parts.append(
            f"<line x1='1' y1='{y * height + 1:.1f}' x2='{width + 1}' "
            f"y2='{y * height + 1:.1f}' stroke='#333' stroke-width='0.6'/>"
        )
    for x in _thin(cols):
        parts.append(
            f"<line x1='{x * width + 1:.1f}' y1='1' x2='{x * width + 1:.1f}' "
            f"y2='{height + 1}' stroke='#333' stroke-width='0.6'/>"
        )
    label = f"{count:,}" + (f"×{len(a.col_chunks):,}" if a.col_chunks else "")
    what = "in memory" if a.unit == "array" else "shard" if "layout" in a.storage else a.unit
    what += "s" if count > 1 and a.unit != "array" else ""
    parts.append(
        f"<text x='1' y='{height + 13}' font-size='10'>{label} {html.escape(what)}</text></svg>"
    )
    return "".join(parts)


def _row_cuts(a: Any) -> tuple[list[float], int]:
    """Row cuts as fractions of the rows, and how many pieces there are."""
    if a.row_chunks:
        total = sum(a.row_chunks)
        return [e / total for e in accumulate(a.row_chunks)][:-1], len(a.row_chunks)
    if a.unit_rows >= 1 and a.rows:
        count = math.ceil(a.rows / a.unit_rows)
        step = a.unit_rows * max(1, count // MAX_LINES)
        return [k * step / a.rows for k in range(1, math.ceil(a.rows / step))], count
    return [], 1


def _thin(cuts: list[float]) -> list[float]:
    return cuts[:: max(1, len(cuts) // MAX_LINES)]


def strip_svg(fractions: list[float], width: int = 192, height: int = 12) -> str:
    """Resident fraction along a file, one cell per piece: dark is in the page cache."""
    if not fractions:
        return ""
    w = width / len(fractions)
    cells = "".join(
        f"<rect x='{i * w:.2f}' width='{w + 0.05:.2f}' height='{height}' fill='#1f77b4' "
        f"fill-opacity='{0.08 + 0.92 * f:.2f}'/>"
        for i, f in enumerate(fractions)
    )
    return f"<svg class='workbench-residency' width='{width}' height='{height}'>{cells}</svg>"


# Each explore result's class names its view (explore.shown.Shown.view): (text, HTML).
VIEWS: dict[str, tuple[Callable[[Any], str], Callable[[Any], str]]] = {
    "inspection": (inspection_text, inspection_html),
    "stats": (stats_text, stats_html),
    "preview": (preview_text, preview_html),
    "advice": (advice_text, advice_html),
    "diagnosis": (diagnosis_text, diagnosis_html),
}


def result_text(result: Any) -> str:
    """The text an explore result prints as: its view's, by the ``view`` its class names."""
    return VIEWS[result.view][0](result)


def result_html(result: Any) -> str:
    """The HTML an explore result renders as in JupyterLab, by the ``view`` its class names."""
    return VIEWS[result.view][1](result)
