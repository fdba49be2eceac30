"""verify's hdf5 checks: every dataset opens and reads whole, so fletcher32 catches flipped
bytes."""

from __future__ import annotations

from pathlib import Path

from ...format.manifest import Column, Shard
from ..base import check_files

__all__: list[str] = []


def check_shard(version_dir: Path, shard: Shard, columns: tuple[Column, ...]) -> list[str]:
    """Open every dataset and read it whole chunk by chunk: fletcher32 catches flipped bytes."""
    import h5py

    def check(path: Path, problems: list[str]) -> None:
        with h5py.File(path, "r") as h:
            for c in columns:
                names = (
                    (
                        [f"{c.name}/indptr", f"{c.name}/indices"]
                        + ([f"{c.name}/values"] if c.has_values else [])
                    )
                    if c.sparse
                    else [c.name]
                )
                for name in names:
                    d = h[name]
                    rows = d.shape[0]
                    want = shard.rows + 1 if name.endswith("/indptr") else shard.rows
                    if (not c.sparse or name.endswith("/indptr")) and rows != want:
                        problems.append(f"{path}:{name} has {rows} rows, manifest says {want}")
                    step = max(1, (d.chunks or (rows,))[0]) * 64
                    for a in range(0, rows, step):
                        d[a : a + step]

    return check_files(version_dir, shard, check, (OSError, KeyError, ValueError))
