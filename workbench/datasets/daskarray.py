"""A dense column of a dataset as a lazy Dask array: the shards, virtually concatenated.

Each shard becomes dask chunks of about ``chunk_bytes`` over its file, as the layout's room gives
it (``dask_source``: a memmapped ``.npy`` for "store", an h5py dataset for "hdf5"). Chunk tasks
hold a small picklable file reference, never the data, so graphs ship cheaply to workers.

>>> x = as_dask("demo_data/demo.store", "features")
>>> x.shape, x.dtype, x.mean(axis=0).compute().shape
((2000, 16), dtype('float32'), (16,))
"""

from __future__ import annotations

from typing import Any

from ..errors import InvalidInputError
from ..format.catalog import read_manifest
from ..layouts import capability, layouts_with

__all__ = ["as_dask"]

DEFAULT_DASK_CHUNK_BYTES = 96 << 20  # dask's own guidance: chunks of ~100 MiB


def as_dask(store: Any, column: str, *, chunk_bytes: int = DEFAULT_DASK_CHUNK_BYTES) -> Any:
    """Column ``column`` of a "store" or "hdf5" dataset as a ``dask.array.Array`` (no data read).

    Parameters
    ----------
    store : str, PathLike or dataset
        A dataset folder, or a workbench dataset returned by ``open_dataset``.
    column : str
        A dense column.
    chunk_bytes : int, default 96 MiB
        About the bytes of a dask chunk; each shard is cut into chunks of whole rows.

    Returns
    -------
    dask.array.Array
        The shards concatenated; each chunk task reads its own rows from its shard's file.

    Raises
    ------
    InvalidInputError
        A foreign (not converted) dataset, an unknown or sparse column, or the "parquet" layout
        (use ``dask.dataframe.read_parquet``).

    Examples
    --------
    >>> y = as_dask("demo_data/demo.store", "label")
    >>> np.array_equal(y[:1000].compute(), np.load("demo_data/raw/labels.npy")[:1000])
    True
    """
    import dask.array as da

    from .base import BaseDataset

    if isinstance(store, BaseDataset):
        if store.version_dir is None:
            raise InvalidInputError(
                f"{store.where}: as_dask reads workbench datasets; this one is "
                "a foreign input: convert it first, or use dask's own readers"
            )
        store = store.version_dir
    version, manifest = read_manifest(store)
    try:
        col = manifest.column(column)
    except KeyError:
        raise InvalidInputError(
            f"{version}: no column {column!r}; columns are {[c.name for c in manifest.columns]}"
        ) from None
    if col.sparse:
        raise InvalidInputError(
            f"{version}: column {column!r} is sparse; as_dask serves dense columns "
            "only (read sparse rows with open_dataset)"
        )
    dask_source = capability(manifest.layout, "dask_source")
    if dask_source is None:
        names = " and ".join(repr(layout) for layout in layouts_with("dask_source"))
        hint = capability(manifest.layout, "DASK_HINT") or "convert it with format='store'"
        raise InvalidInputError(
            f"{version}: as_dask reads the {names} layouts, this one is {manifest.layout!r}; {hint}"
        )
    rows_per_chunk = max(1, chunk_bytes // max(1, col.row_bytes))
    parts = []
    for i, shard in enumerate(manifest.shards):
        if shard.rows == 0:
            continue
        src, lock = dask_source(version, shard, col)
        chunks = (min(rows_per_chunk, shard.rows), *col.shape)
        parts.append(
            da.from_array(
                src,
                chunks=chunks,
                lock=lock,
                asarray=False,
                fancy=False,
                name=f"workbench-{version.name}-{column}-{i}",
            )
        )
    if not parts:
        return da.zeros((0, *col.shape), dtype=col.dtype)
    return da.concatenate(parts, axis=0) if len(parts) > 1 else parts[0]
