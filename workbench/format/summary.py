"""Human summaries of a dataset's manifest (text only; the CLI and notebooks print them).

>>> print(info("demo_data/demo.store").splitlines()[0])  # doctest: +ELLIPSIS
workbench dataset demo_data/demo.store (v-...)
"""

from __future__ import annotations

import os

from ..units import human_bytes
from .catalog import read_manifest
from .manifest import Manifest

__all__ = ["info"]


def describe(m: Manifest, where: str = "") -> str:
    """A readable multi-line summary of a manifest."""
    lines = [
        f"workbench dataset {where}".rstrip(),
        f"  layout        {m.layout} (format v{m.format_version}, "
        f"written by workbench {m.workbench_version})",
        f"  rows          {m.num_rows:,} in {len(m.shards)} shard(s), "
        f"{human_bytes(m.nbytes)} on disk",
        f"  source        {m.source.get('description', '?')}",
        f"  fingerprint   {m.source.get('fingerprint') or '(none: one-shot iterable)'}",
        f"  transform     {m.transform['name'] if m.transform else '(none)'}",
        f"  target        {m.target or '(none)'}",
        f"  created       {m.created}",
        "  columns",
    ]
    for c in m.columns:
        kind = (
            (
                f"sparse CSR, width {c.shape[0]}, {c.index_dtype} indices"
                + ("" if c.has_values else ", implicit ones")
            )
            if c.sparse
            else f"{c.dtype} {list(c.shape)}"
        )
        names = (
            f"  <- {', '.join(c.names[:4])}{', ...' if len(c.names) > 4 else ''}" if c.names else ""
        )
        lines.append(f"    {c.name:<12} {kind}{names}")
    rows = [s.rows for s in m.shards]
    lines.append(
        f"  shard rows    min {min(rows):,} / max {max(rows):,}" if rows else "  no shards"
    )
    return "\n".join(lines)


def info(path: str | os.PathLike[str]) -> str:
    """Summary of the committed dataset at ``path``.

    Parameters
    ----------
    path : str or PathLike
        A dataset folder.

    Returns
    -------
    str
        Several lines: layout, rows and shards, bytes, source, transform, target, columns.

    Raises
    ------
    DatasetNotFoundError, CorruptDatasetError
        As :func:`~workbench.format.catalog.read_manifest` raises them.

    Examples
    --------
    >>> print(info("demo_data/demo.store"))  # doctest: +ELLIPSIS
    workbench dataset demo_data/demo.store (v-...)
      layout        store (format v1, written by workbench ...)
      rows          2,000 in 1 shard(s), ... on disk
    ...
      target        label
    ...
    """
    version, m = read_manifest(path)
    return describe(m, f"{path} ({version.name})")
