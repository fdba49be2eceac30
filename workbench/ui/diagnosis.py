"""Text and HTML for ``wb.doctor``'s findings: one renderer, so logs, the CLI and JupyterLab say
the same things. Every value placed in HTML is escaped.
"""

from __future__ import annotations

import html
import textwrap
from typing import Any

__all__: list[str] = []

WIDTH = 100
COLOURS = {"error": "#c0392b", "warning": "#b9770e", "info": "#2e86c1"}


def _empty(d: Any) -> str:
    what = "measured and inspected" if d.measured else "inspected (measure=False: no timing)"
    return f"no findings: {d.subject}: none of the pitfalls doctor checks ({what})"


def diagnosis_text(d: Any) -> str:
    """A plain report: one block per finding, most severe first."""
    if not d.findings:
        return "\n".join([_empty(d), *(f"  note: {n}" for n in d.notes)])
    by = {s: sum(f.severity == s for f in d.findings) for s in COLOURS}
    counts = ", ".join(f"{n} {s}{'s' if n > 1 and s != 'info' else ''}" for s, n in by.items() if n)
    n = len(d.findings)
    lines = [f"doctor: {d.subject}", f"  {n} finding{'s' if n > 1 else ''} ({counts})"]
    for f in d.findings:
        lines.append(f"  [{f.severity}] {f.id}: {f.title}")
        lines += textwrap.wrap(
            f.evidence, WIDTH, initial_indent="      evidence: ", subsequent_indent="        "
        )
        lines.append(f"      fix: {f.fix}")
    if not d.measured:
        lines.append("  note: measure=False: timing probes skipped")
    lines += [f"  note: {n}" for n in d.notes]
    return "\n".join(lines)


def diagnosis_html(d: Any) -> str:
    """A table (severity, title, evidence, fix in ``<code>``), or the "no findings" line."""
    e = html.escape
    out = [f"<div class='workbench-doctor'><b>doctor</b>: {e(d.subject)}"]
    if not d.findings:
        out.append(f"<div>{e(_empty(d))}</div>")
    else:
        out.append("<table><tr><th>severity</th><th>finding</th><th>evidence</th><th>fix</th></tr>")
        for f in d.findings:
            colour = COLOURS.get(f.severity, "#333")
            out.append(
                f"<tr><td style='color:{colour}'><b>{e(f.severity)}</b></td>"
                f"<td>{e(f.title)}<br><small><code>{e(f.id)}</code></small></td>"
                f"<td>{e(f.evidence)}</td><td><code>{e(f.fix)}</code></td></tr>"
            )
        out.append("</table>")
    if not d.measured:
        out.append("<small>measure=False: timing probes skipped</small>")
    out += [f"<div><i>note:</i> {e(n)}</div>" for n in d.notes]
    return "".join(out) + "</div>"
