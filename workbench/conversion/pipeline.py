"""Source -> validated chunks -> shards -> manifest -> atomic commit. No format bytes, no UI.

>>> import workbench as wb
>>> m = wb.convert("demo_data/raw/demo.csv", "demo.store", target="label", sparse={"tokens": 1000})
>>> m.num_rows, [c.name for c in m.columns], m.target
(2000, ['features', 'tokens', 'label'], 'label')
"""

from __future__ import annotations

import hashlib
import inspect
import os
import warnings
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .._version import __version__
from ..errors import (
    DiskFullError,
    IncompatibleResumeError,
    InvalidInputError,
    PerformanceWarning,
    WorkbenchError,
)
from ..format.files import no_space
from ..format.manifest import LAYOUTS, Manifest
from ..format.schema import est_row_bytes, infer_columns
from ..inputs import open_source
from ..layouts import writer_options
from . import commit as _commit
from . import space
from .jobs import Transform, reusable, shard_jobs, whole_blocks
from .shards import apply_transform, run_jobs

__all__ = ["convert"]

DEFAULT_SHARD_BYTES = 256 << 20
DEFAULT_CHUNK_BYTES = 8 << 20  # rows read and transformed at a time


def convert(
    source: Any,
    dest: str | os.PathLike[str],
    *,
    format: str = "store",
    target: str | None = None,
    transform: Transform | None = None,
    columns: list[str] | None = None,
    drop: list[str] | None = None,
    sparse: dict[str, int] | None = None,
    key: Any = None,
    nan: str = "error",
    dtype: str | None = None,
    iterable: str | None = None,
    shard_bytes: int = DEFAULT_SHARD_BYTES,
    chunk_rows: int | None = None,
    row_group_bytes: int | None = None,
    hdf5_chunk_bytes: int | None = None,
    compression: str | None = None,
    overwrite: bool = False,
    resume: bool = False,
    client: Any = None,
    workers: int | None = None,
    progress: bool | Callable[[int, int | None], None] = True,
    durable: bool = False,
) -> Manifest:
    """Convert ``source`` into a dataset at ``dest`` out of core, and commit it atomically.

    Parameters
    ----------
    source : path, array-like, table, dict of columns or iterable
    dest, format : str or PathLike, str
        The dataset's folder, and its layout: "store" (sharded ``.npy``), "hdf5" or "parquet".
    target, transform : optional
        The label column, kept as its own scalar column; ``transform(chunk) -> chunk``, run
        once per chunk of rows at conversion time.
    columns, drop, sparse, key : optional
        Keep only / remove these source columns (``columns`` keeps target and sparse ones);
        ``{column: width}`` of columns of nonzero indices; HDF5: a group, a dataset or a list.
    nan, dtype, iterable : str, optional
        "error" refuses NaN, inf and missing values, "allow" keeps them; the dtype of packed
        ``"features"`` (float32), else of floating columns; iterables: "rows" or "batches".
    shard_bytes, chunk_rows, row_group_bytes, hdf5_chunk_bytes, compression : optional
        Bytes a shard (256 MiB; the unit of parallel work); rows read and transformed at a time;
        bytes a Parquet row group (4 MiB) and an HDF5 chunk (1 MiB); the Parquet codec (none).
    overwrite, resume, durable : bool, default False
        Replace a dataset at ``dest`` atomically; go on with an interrupted conversion; fsync
        files and folders as they are written and committed.
    client, workers : distributed.Client or int, optional
        Convert shards as Dask tasks on ``client`` or a local cluster of ``workers``; a CSV file
        is cut into newline-aligned byte ranges (one reader from a quoted newline on).
    progress : bool or callable, default True
        True draws tqdm's bar (in a notebook, one display updated in place), False none; a
        callable ``progress(rows_done, rows_total_or_None)`` receives every update.

    Returns
    -------
    Manifest

    Raises
    ------
    InvalidInputError
        An invalid option or input, no rows, or a ``target`` that the columns lack.
    IncompatibleResumeError, DatasetExistsError
        ``resume`` of a one-shot iterable or a changed source or options; ``dest`` holds a dataset.
    DiskFullError
        The output cannot fit (refused up front when its size is known) or the disk filled up;
        names the bytes needed and free. The partial files are removed; the old version stays.

    Examples
    --------
    >>> m = convert(np.zeros((1000, 8), "float32"), "x.store", progress=False)
    >>> m.num_rows
    1000
    """
    if format not in LAYOUTS:
        raise InvalidInputError(f"format={format!r}; choose one of {', '.join(LAYOUTS)}")
    if nan not in ("error", "allow"):
        raise InvalidInputError(f"nan={nan!r}; choose 'error' or 'allow'")
    dest = Path(dest)
    src = open_source(
        source,
        key=key,
        columns=columns,
        drop=drop,
        target=target,
        sparse=sparse,
        nan=nan,
        dtype=dtype,
        iterable=iterable,
    )
    where = src.path or src.description
    fingerprint = src.fingerprint()
    if resume and fingerprint is None:
        raise IncompatibleResumeError(
            f"{where}: a one-shot iterable cannot be resumed; convert it again without resume=True"
        )

    rows_per_chunk = chunk_rows or 8192
    stream = src.chunks(rows_per_chunk, start=0)
    try:
        raw_first = next(stream)
    except StopIteration:
        raise InvalidInputError(f"{where}: the source has no rows; nothing to convert") from None
    first = apply_transform(transform, raw_first[1], raw_first[0], where)
    cols = infer_columns(first, where, None if transform else src.feature_names)
    if target is not None and target not in {c.name for c in cols}:
        raise InvalidInputError(
            f"{where}: target {target!r} is not among the columns "
            f"{[c.name for c in cols]} (did the transform drop it?)"
        )
    row_bytes = est_row_bytes(cols, first)
    if chunk_rows is None and fingerprint is not None:
        rows_per_chunk = max(64, min(1 << 20, DEFAULT_CHUNK_BYTES // row_bytes))
    shard_rows = whole_blocks(max(1, shard_bytes // row_bytes), src.block_offsets)
    expect = src.num_rows or src.estimated_rows
    if (client is not None or workers) and expect and expect <= shard_rows:
        warnings.warn(
            f"{where}: about {expect:,} rows make one shard of shard_bytes={shard_bytes:,}; "
            "a shard is the unit of parallel work, so one worker does it all: pass a "
            "smaller shard_bytes= (several shards per worker)",
            PerformanceWarning,
            stacklevel=2,
        )
    options: dict[str, Any] = {"shard_rows": shard_rows, "chunk_rows": rows_per_chunk}
    options.update(
        writer_options(
            format,
            shard_rows=shard_rows,
            row_bytes=row_bytes,
            row_group_bytes=row_group_bytes,
            compression=compression,
            hdf5_chunk_bytes=hdf5_chunk_bytes,
        )
    )
    tdesc = describe_transform(transform)
    key_ = {
        "fingerprint": fingerprint,
        "layout": format,
        "options": options,
        "target": target,
        "columns": [asdict(c) for c in cols],
        "transform": tdesc,
    }
    staging = _commit.begin(dest, key_, overwrite=overwrite, resume=resume, durable=durable)
    opts = {**options, "durable": durable}
    total = src.num_rows or src.estimated_rows
    done_rows = 0
    if not resume:  # refuse before writing when the output's size is known and cannot fit
        try:
            need = space.expected_bytes(src.num_rows, row_bytes, shard_rows, cols, compression)
            space.check_room(dest, need)
        except DiskFullError:
            _commit.abort(staging)
            raise
    try:
        done = reusable(staging)
        if fingerprint is not None:  # re-iterable: restart at the first missing row, free the probe
            stream.close()  # type: ignore[attr-defined]
            stream = None  # type: ignore[assignment]
        jobs = shard_jobs(
            src,
            stream,
            raw_first,
            done,
            cols,
            format,
            staging.folder,
            opts,
            shard_rows,
            rows_per_chunk,
            transform,
            nan,
            where,
            parallel=client is not None or bool(workers),
        )
        from ..ui.progress import reporter

        report = reporter(progress, f"convert -> {dest.name}")
        done_rows = sum(s.rows for s in done.values())
        try:
            for index, shard in run_jobs(jobs, client=client, workers=workers):
                staging.record(index, shard)
                done_rows += shard.rows
                report(done_rows, max(total or 0, done_rows) if total else None)
            report(done_rows, done_rows)
        finally:
            report.close()
    except (WorkbenchError, OSError) as e:
        ours = isinstance(e, WorkbenchError)  # a TransformError is the user's, whatever its cause
        full = no_space(e) and (isinstance(e, DiskFullError) or not ours)
        if not (full or ours):
            raise  # an OS error of another kind: the staging folder stays for resume=True
        written = space.folder_bytes(staging.folder)
        _commit.abort(staging)
        if not full:
            raise
        left = max(0, total - done_rows) if total else None
        raise space.disk_full(dest, written, staging.done, left, row_bytes, e) from e
    shards = tuple(staging.done[i] for i in sorted(staging.done))
    manifest = Manifest(
        layout=format,
        columns=cols,
        shards=shards,
        target=target,
        options=options,
        source={"description": src.description, "fingerprint": fingerprint},
        transform=tdesc,
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        workbench_version=__version__,
    )
    try:
        _commit.commit(staging, manifest)
    except OSError as e:  # the manifest or the pointer did not fit; commit removed the version
        if not no_space(e):
            raise
        raise space.disk_full(dest, 0, staging.done, 0, row_bytes, e) from e
    return manifest


def describe_transform(transform: Transform | None) -> dict[str, Any] | None:
    """Name and source digest of a transform: recorded in the manifest, and a resume key."""
    if transform is None:
        return None
    qualname = getattr(transform, "__qualname__", repr(transform))
    name = f"{getattr(transform, '__module__', '?')}.{qualname}"
    try:
        code = inspect.getsource(transform)
    except (OSError, TypeError):
        code = repr(transform)
    return {
        "name": name,
        "source_sha256": hashlib.sha256(code.encode()).hexdigest(),
        "doc": (inspect.getdoc(transform) or "").split("\n")[0],
    }
