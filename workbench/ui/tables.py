"""Text and HTML for ``wb.stats`` and ``wb.preview``: tables, small histograms, and image rows
drawn as thumbnails (PNG made here with zlib: no imaging library needed). Values are escaped.
"""

from __future__ import annotations

import base64
import html
import struct
import textwrap
import zlib
from typing import Any

import numpy as np

from ..tuning.trials import STAGE_COLUMN, TRIAL_COLUMNS, stage_shares, stage_text, trial_rows
from ..units import human_bytes

__all__: list[str] = []

SHOWN_FEATURES = 8  # a column with more features shows these and one line over all of them
FIGURES = ("count", "mean", "std", "min", "p1", "p50", "p99", "max", "nan", "inf", "zero_fraction")
TEXT_FIGURES = FIGURES[
    1:
]  # the text table leaves out count (rows minus nan and inf) to fit 100 columns


def _fmt(v: Any) -> str:
    v = float(v)
    if np.isnan(v):
        return "-"
    if v.is_integer() and abs(v) < 1e15:
        return f"{int(v):,}"
    return f"{v:.4g}"


def _rows(s: Any) -> list[tuple[str, list[str], Any]]:
    """(label, figures, histogram counts) per shown feature, plus an 'all features' line."""
    out = []
    for name, figs in s.columns.items():
        width = len(figs["count"])
        names = s.features.get(name) or [str(j) for j in range(width)]
        shown = range(width) if width <= SHOWN_FEATURES else range(SHOWN_FEATURES)
        for j in shown:
            label = name if width == 1 else f"{name}[{names[j]}]"
            out.append((label, [_fmt(figs[f][j]) for f in FIGURES], figs["hist_counts"][j]))
        if width > SHOWN_FEATURES:
            over = [
                _fmt(figs["count"].sum()),
                _fmt(np.nanmean(figs["mean"])),
                _fmt(np.nanmean(figs["std"])),
                _fmt(np.nanmin(figs["min"])),
                "-",
                "-",
                "-",
                _fmt(np.nanmax(figs["max"])),
                _fmt(figs["nan"].sum()),
                _fmt(figs["inf"].sum()),
                _fmt(np.mean(figs["zero_fraction"])),
            ]
            out.append((f"{name}: all {width}", over, None))
    return out


def stats_text(s: Any) -> str:
    table = _rows(s)
    # NaN and inf columns only where some value is one (most data has none: say so once)
    odd = [
        i
        for i, f in enumerate(FIGURES)
        if f in ("nan", "inf") and any(figs[i] not in ("0", "-") for _, figs, _ in table)
    ]
    keep = [i for i, f in enumerate(FIGURES) if f not in ("count", "nan", "inf", "zero_fraction")]
    keep += odd
    head = ("column", *(FIGURES[i] for i in keep), "zeros")
    rows = [head] + [
        (label[:24], *(figs[i] for i in keep), _pct(figs[-1])) for label, figs, _ in table
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = [f"{s.source}: {s.rows:,} rows" + ("" if odd else "; no NaN or inf values")]
    lines += [
        "  " + "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths)))
        for r in rows
    ]
    if any(len(f["count"]) > SHOWN_FEATURES for f in s.columns.values()):
        lines.append(
            f"  (many features: the first {SHOWN_FEATURES}, then one line over all, "
            "mean and std averaged)"
        )
    lines += [f"  note: {n}" for n in s.notes]
    return "\n".join(lines)


def _pct(v: str) -> str:
    return "-" if v == "-" else f"{float(v.replace(',', '')):.1%}"


def hist_svg(counts: Any, width: int = 96, height: int = 24) -> str:
    if counts is None or not len(counts) or not np.max(counts):
        return ""
    c = np.asarray(counts, dtype=float) / np.max(counts)
    w = width / len(c)
    bars = "".join(
        f"<rect x='{i * w:.1f}' y='{height * (1 - v):.1f}' width='{max(w - 0.5, 0.5):.1f}'"
        f" height='{height * v:.1f}' fill='#1f77b4'/>"
        for i, v in enumerate(c)
    )
    return f"<svg class='workbench-hist' width='{width}' height='{height}'>{bars}</svg>"


def stats_html(s: Any) -> str:
    e = html.escape
    head = "".join(f"<th>{e(f)}</th>" for f in ("column", *FIGURES, "histogram"))
    body = "".join(
        "<tr>"
        + f"<td>{e(label)}</td>"
        + "".join(f"<td>{e(v)}</td>" for v in figs)
        + f"<td>{hist_svg(hist)}</td></tr>"
        for label, figs, hist in _rows(s)
    )
    notes = "".join(f"<div><i>note:</i> {e(n)}</div>" for n in s.notes)
    return (
        f"<div class='workbench-stats'><b>{e(s.source)}</b>: {s.rows:,} rows<table>"
        f"<tr>{head}</tr>{body}</table>{notes}</div>"
    )


def _cell_text(kind: str, v: np.ndarray) -> str:
    if kind == "sparse":
        return "nonzeros " + _short(v.tolist())
    if kind == "image":
        return f"image {'x'.join(map(str, v.shape))}"
    return (
        _short(v.tolist())
        if kind == "vector"
        else _fmt(v)
        if np.isscalar(v.item()) and np.issubdtype(v.dtype, np.number)
        else str(v)
    )


def _short(values: list[Any], keep: int = 6) -> str:
    shown = ", ".join(_fmt(x) if isinstance(x, (int, float)) else str(x) for x in values[:keep])
    return f"[{shown}{', ...' if len(values) > keep else ''}] ({len(values)})"


def preview_text(p: Any) -> str:
    names = list(p.columns)
    lines = [f"{p.source}: rows {p.indices[0]:,}..{p.indices[-1]:,} ({len(p.indices)} shown)"]
    for i, row in enumerate(p.indices):
        cells = [f"{n}={_cell_text(p.kinds[n], p.columns[n][i])}" for n in names]
        lines += textwrap.wrap(
            "  ".join(cells),
            98,
            initial_indent=f"  {row:>8,}  ",
            subsequent_indent=" " * 12,
            break_long_words=False,
        )
    return "\n".join(lines)


def preview_html(p: Any) -> str:
    e = html.escape
    names = list(p.columns)
    head = "<th>row</th>" + "".join(f"<th>{e(n)}</th>" for n in names)
    body = []
    for i, row in enumerate(p.indices):
        cells = []
        for n in names:
            v = p.columns[n][i]
            if p.kinds[n] == "image":
                cells.append(
                    f"<td><img class='workbench-thumb' src='{png_uri(v)}' "
                    f"title='{e(_cell_text('image', v))}' width='48'></td>"
                )
            else:
                cells.append(f"<td>{e(_cell_text(p.kinds[n], v))}</td>")
        body.append(f"<tr><td>{row:,}</td>{''.join(cells)}</tr>")
    return (
        f"<div class='workbench-preview'><b>{e(p.source)}</b><table><tr>{head}</tr>"
        f"{''.join(body)}</table></div>"
    )


def png_uri(img: np.ndarray) -> str:
    """An image row (H x W, H x W x 1|3, or 1|3 x H x W) as a PNG data URI, scaled to 0-255."""
    a = np.asarray(img, dtype=np.float64)
    if a.ndim == 3 and a.shape[0] in (1, 3) and a.shape[2] not in (1, 3):
        a = np.moveaxis(a, 0, -1)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    finite = a[np.isfinite(a)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    a = np.nan_to_num((a - lo) / (hi - lo if hi > lo else 1.0)) * 255
    pixels = np.clip(a, 0, 255).astype(np.uint8)
    h, w = pixels.shape[:2]
    color = 2 if pixels.ndim == 3 else 0
    raw = b"".join(b"\x00" + pixels[y].tobytes() for y in range(h))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    png = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, color, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )
    return "data:image/png;base64," + base64.b64encode(png).decode()


def advice_text(a: Any) -> str:
    s = a.situation
    lines = [
        f"{a.source}: {human_bytes(s['bytes'])} ({s['rows']:,} rows of "
        f"{human_bytes(s['row_bytes'])}); "
        f"page cache {human_bytes(s['ram'])}: {'fits' if s['fits'] else 'does not fit'}; "
        f"batches of {s['batch_size']:,}, {s['shuffle']} order"
    ]
    lines = textwrap.wrap(lines[0], 98, subsequent_indent="  ")
    for r in a.recommendations:
        lines.append(f"  {r.topic}: {r.value}")
        lines += textwrap.wrap(
            r.reason, 98, initial_indent="    why: ", subsequent_indent="         "
        )
        lines.append(f"    do:  {r.code}")
    if a.measurements:
        lines.append("  measured (rows/s, a few batches each):")
        lines += [
            f"    {m['layout']:<24} {m['order']:<10} {m['rows_per_s']:>12,.0f}"
            for m in a.measurements
        ]
    lines += [f"  note: {n}" for n in a.notes]
    return "\n".join(lines)


def advice_html(a: Any) -> str:
    e = html.escape
    rows = "".join(
        f"<tr><td><b>{e(r.topic)}</b></td><td>{e(r.value)}</td><td>{e(r.reason)}</td>"
        f"<td><code>{e(r.code)}</code></td></tr>"
        for r in a.recommendations
    )
    meas = "".join(
        f"<tr><td>{e(m['layout'])}</td><td>{e(m['order'])}</td><td>{m['rows_per_s']:,.0f}</td></tr>"
        for m in a.measurements
    )
    head = e(" ".join(advice_text(a).split("\n  layout")[0].split()))
    notes = "".join(f"<div><i>note:</i> {e(n)}</div>" for n in a.notes)
    return (
        f"<div class='workbench-advice'><div>{head}</div><table><tr><th>topic</th><th>advice"
        f"</th><th>why</th><th>code</th></tr>{rows}</table>"
        + (
            f"<table><tr><th>layout</th><th>order</th><th>rows/s</th></tr>{meas}</table>"
            if meas
            else ""
        )
        + f"{notes}</div>"
    )


def trials_table(trials: list[dict[str, Any]]) -> str:
    """An HTML table of trials (the cells of :func:`~workbench.tuning.trials.trial_rows`, and
    where each one's time went before the note: the dominant stage, the whole split on hover);
    the fastest measured one in bold."""
    rows, top = trial_rows(trials)
    columns = (*TRIAL_COLUMNS[:-1], STAGE_COLUMN, TRIAL_COLUMNS[-1])
    head = "".join(f"<th>{html.escape(h)}</th>" for h in columns)
    bold = '<tr style="font-weight:bold;background:#e6f4ea">'
    body = []
    for i, (row, trial) in enumerate(zip(rows, trials)):
        stages = trial.get("stages") or {}
        split = " · ".join(f"{s} {v:.0%}" for s, v in stage_shares(stages).items())
        cells = [f"<td>{html.escape(c)}</td>" for c in row]
        cells.insert(
            -1,
            f"<td class='workbench-trial-stage' title='{html.escape(split)}'>"
            f"{html.escape(stage_text(stages))}</td>",
        )
        body.append((bold if i == top else "<tr>") + "".join(cells) + "</tr>")
    return (
        f"<table class='workbench-trials'><thead><tr>{head}</tr></thead>"
        f"<tbody>{''.join(body)}</tbody></table>"
    )
