"""Read-only integrity check of a committed dataset: sizes, digests and format-level checks.

>>> report = verify("demo_data/demo.store")
>>> report.ok
True
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import CorruptDatasetError
from ..layouts import check_shard
from .catalog import read_manifest, size_problems
from .files import file_digest

__all__ = ["VerifyReport", "verify"]


@dataclass(frozen=True)
class VerifyReport:
    """What :func:`verify` found: ``problems`` names every bad file (empty when ``ok``).

    Parameters
    ----------
    path : str
        The dataset as given to :func:`verify`.
    version, layout : str
        The committed version's folder name, and its layout.
    shards, files, bytes : int
        Shards and files checked, and the bytes digested.
    seconds : float
        How long the check took.
    problems : tuple of str
        One message per bad file or failed format check.
    """

    path: str
    version: str
    layout: str
    shards: int
    files: int
    bytes: int
    seconds: float
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems

    def __str__(self) -> str:
        head = (
            f"{self.path} ({self.version}, {self.layout}): {self.shards} shards, "
            f"{self.files} files, "
            f"{self.bytes / 2**20:.1f} MiB checked in {self.seconds:.2f} s"
        )
        if self.ok:
            return head + ": OK"
        return (
            head
            + f": {len(self.problems)} problem(s)\n"
            + "\n".join(f"  - {p}" for p in self.problems)
        )


def verify(path: str | os.PathLike[str], *, strict: bool = True) -> VerifyReport:
    """Check every file's size and xxh3 digest, and the format's own checks (npy headers, HDF5
    fletcher32, Parquet page CRCs).

    Parameters
    ----------
    path : str or PathLike
        A dataset folder.
    strict : bool, default True
        Raise on any problem; False returns the report with the problems in it.

    Returns
    -------
    VerifyReport

    Raises
    ------
    CorruptDatasetError
        With ``strict``, any problem (the message lists every bad file); always, an unreadable
        ``CURRENT`` or manifest.
    DatasetNotFoundError
        ``path`` is not a committed workbench dataset.

    Examples
    --------
    >>> verify("demo_data/demo.store").ok
    True
    """
    t0 = time.perf_counter()
    version, m = read_manifest(path, check_sizes=False)
    bad_sizes = size_problems(version, m)
    problems = list(bad_sizes.values())
    nbytes = nfiles = 0
    for i, shard in enumerate(m.shards):
        shard_ok = True
        for f in shard.files:
            fp = version / f.path
            nfiles += 1
            if fp in bad_sizes:
                shard_ok = False
                continue
            size, digest = file_digest(fp)
            nbytes += size
            if digest != f.xxh3:
                problems.append(
                    f"{fp}: checksum mismatch (shard {i}): xxh3 {digest}, manifest says {f.xxh3}"
                )
                shard_ok = False
        if shard_ok:
            problems.extend(check_shard(m.layout, version, shard, m.columns))
    report = VerifyReport(
        str(path),
        Path(version).name,
        m.layout,
        len(m.shards),
        nfiles,
        nbytes,
        time.perf_counter() - t0,
        tuple(problems),
    )
    if strict and problems:
        raise CorruptDatasetError(
            str(report) + "\nConvert the source again (overwrite=True) or restore "
            "the dataset from a copy."
        )
    return report
