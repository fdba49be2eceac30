"""verify's store checks: every ``.npy`` header parses and agrees with the manifest."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...format.manifest import Column, Shard

__all__: list[str] = []


def check_shard(version_dir: Path, shard: Shard, columns: tuple[Column, ...]) -> list[str]:
    """Each .npy header must parse and agree with the manifest's dtype and row count."""
    problems = []
    by_name = {c.name: c for c in columns}
    for f in shard.files:
        path = version_dir / f.path
        try:
            arr = np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as e:
            problems.append(f"{path}: unreadable .npy ({e})")
            continue
        c = by_name.get(f.column or "")
        if c is None:
            problems.append(f"{path}: column {f.column!r} is not in the manifest")
            continue
        want_rows = shard.rows + 1 if f.part == "indptr" else shard.rows
        if f.part == "data" and (
            arr.shape != (want_rows, *c.shape) or arr.dtype != np.dtype(c.dtype)
        ):
            problems.append(
                f"{path}: holds {arr.dtype}{arr.shape}, manifest says "
                f"{c.dtype}{(want_rows, *c.shape)}"
            )
        elif f.part == "indptr" and arr.shape != (want_rows,):
            problems.append(f"{path}: indptr has {arr.shape[0]} entries, expected {want_rows}")
    return problems
