"""``open_dataset``: any random-access input as a fast map-style torch Dataset.

Inputs are classified by :func:`workbench.inputs.kinds.kind_of`, the same table ``convert`` uses: a
workbench dataset folder (each layout's room opens its reader), a foreign HDF5 file, a Parquet file
or folder, a ``.npy`` file (memory-mapped), a NumPy array or memmap, a torch tensor, a dict of
columns, a ``CSR`` or scipy.sparse matrix, a pyarrow Table or pandas DataFrame, a Dask array.
Stream-only inputs (CSV, iterables) have no fast random access: the error says to convert them.
Every result implements the Dataset protocol of ``docs/CONTRACTS.md``: ``__getitems__`` reads a
whole batch in one pass.

>>> ds = open_dataset({"x": np.zeros((1000, 4), "float32"), "y": np.arange(1000)})
>>> ds.get_batch(range(256))["x"].shape
torch.Size([256, 4])
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from .._lazy import attach
from ..errors import DatasetNotFoundError, InvalidInputError
from .base import BaseDataset

if TYPE_CHECKING:
    from ..inputs.kinds import Kind

__all__ = ["Mixture", "as_dask", "mix", "open_dataset"]
__getattr__, __dir__ = attach(
    __name__,
    {"Mixture": ".mixture", "as_dask": ".daskarray", "mix": ".mixture", "open_dataset": "."},
)


def open_dataset(
    source: Any,
    *,
    columns: str | list[str] | None = None,
    sparse: str = "dense",
    key: str | list[str] | None = None,
    dtype: Any = None,
    sparse_dims: dict[str, int] | None = None,
    cache_dir: Any = None,
    cache_bytes: int | None = None,
    timeout: float = 30.0,
    cache: str | None = None,
    memory_budget: int | str | None = None,
    where: Any = None,
) -> BaseDataset:
    """Open ``source`` for reading batches of rows as torch tensors.

    Contiguous batches of memory-mapped data (store layout, ``.npy``, read-only memmaps) are
    zero-copy tensors over the page cache and are read-only: clone before editing in place.

    Parameters
    ----------
    source : path, URL, array, tensor, table, dict of columns or Dask array
        See the module docstring for the supported kinds.
    columns : str or list of str, optional
        Names to read (default: all); a single name is allowed.
    sparse : {"dense", "coo", "csr"}, default "dense"
        How ``__getitems__`` returns sparse columns: ``"dense"`` (float tensor), ``"coo"`` or
        ``"csr"`` (torch sparse tensors of shape ``(batch, dim)``).
    key : str or list of str, optional
        HDF5 only: a group (its datasets become columns), a dataset path, or a list of them.
    dtype : torch or NumPy float dtype, optional
        Cast floating columns and sparse expansions to this float dtype (default: as stored;
        sparse expansions float32).
    sparse_dims : dict of str to int, optional
        Foreign Parquet and HDF5 only: ``{column: row width}``; Parquet list columns named here
        are read as sparse indices (``<col>.values`` as values when present).
    cache_dir, cache_bytes : path and int, optional
        A URL source only (``http(s)://``, ``file://``, any fsspec URL): where fetched shards are
        kept, and the most bytes kept there (default 4 GiB); see :mod:`workbench.datasets.remote`.
    timeout : float, default 30.0
        A URL source only: seconds a connection or a read may stall before the fetch is retried
        (then :class:`~workbench.errors.RemoteError` names the URL and shard), so a stalled
        server fails the epoch in bounded time instead of hanging it.
    cache : {None, "ram"}, optional
        ``"ram"``: copy the selected dense columns once, on a background thread while the first
        epoch reads, into huge-page memory shared with forked loader workers; a full shuffle
        then gathers from RAM. Reads go to the source until the copy is complete, and for good
        where it does not fit ``memory_budget`` (a
        :class:`~workbench.errors.MemoryBudgetWarning` names both sizes). ``ds.ram_tier`` says
        where it is (:mod:`workbench.datasets.ramtier`). Off by default: it takes the memory
        the copy needs, and only a random order gains from it.
    memory_budget : int or str, optional
        With ``cache="ram"``: the most bytes the copy may take (``"4GiB"``); default half of
        what this container leaves now.
    where : tuple, list or callable, optional
        Keep only the rows a filter passes, evaluated once, a chunk at a time: pyarrow's
        ``filters`` form (``("label", "in", [1, 3])``, a list of such terms that must all hold,
        or a list of lists, any of which may) on one-value-a-row columns (read or not), or a
        callable taking a batch (column -> tensor) and returning one bool a row. The loader's
        orders run over the kept rows; ``len(ds)`` counts them, ``ds.kept_fraction`` says the
        share (:mod:`workbench.datasets.filtered`).

    Returns
    -------
    BaseDataset
        A map-style torch Dataset whose ``__getitems__`` reads a whole batch in one pass.

    Raises
    ------
    DatasetNotFoundError
        ``source`` is a path that does not exist.
    InvalidInputError
        ``key`` or ``sparse_dims`` given for an input they do not apply to, a stream-only input
        (CSV, iterables: convert them first), ``columns`` the input lacks, or an invalid
        ``sparse`` or ``dtype``.
    CorruptDatasetError
        A workbench dataset whose files disagree with its manifest.

    Examples
    --------
    >>> ds = open_dataset(np.arange(12, dtype="float32").reshape(6, 2))
    >>> ds.get_batch([0, 5])["x"].tolist()
    [[0.0, 1.0], [10.0, 11.0]]
    """
    from .filtered import with_filter
    from .tiered import with_cache

    def opened(cols: Any) -> BaseDataset:
        return _open(source, cols, sparse, key, dtype, sparse_dims, cache_dir, cache_bytes, timeout)

    return with_cache(with_filter(opened(columns), where, opened), cache, memory_budget)


def _open(
    source: Any,
    columns: Any,
    sparse: str,
    key: Any,
    dtype: Any,
    sparse_dims: Any,
    cache_dir: Any,
    cache_bytes: int | None,
    timeout: float,
) -> BaseDataset:
    from ..inputs.kinds import KINDS, kind_of, resolve

    kw: dict[str, Any] = {"sparse": sparse, "dtype": dtype}
    if isinstance(source, str) and "://" in source:
        from .remote import is_url, open_remote

        if is_url(source) and not source.rstrip("/").lower().endswith(".zarr"):  # zarr: a kind
            return open_remote(
                source,
                cache_dir=cache_dir,
                cache_bytes=cache_bytes,
                columns=columns,
                timeout=timeout,
                **kw,
            )
    kind = KINDS[kind_of(source, missing=DatasetNotFoundError)]
    where = os.fspath(source) if isinstance(source, (str, os.PathLike)) else _describe(source, kind)
    if key is not None and not kind.accepts_key:
        raise InvalidInputError(f"{where}: key= applies to HDF5 files only; drop it for this input")
    if sparse_dims is not None and not kind.accepts_sparse_dims:
        raise InvalidInputError(
            f"{where}: sparse_dims= applies to foreign Parquet and HDF5 files "
            "only; drop it for this input"
        )
    if kind.dataset is None:
        raise InvalidInputError(
            f"{where}: a {kind.name} input is read only as a stream, so it has no fast random "
            "access; convert it first: wb.convert(source, 'data.store'), then "
            "open_dataset('data.store')"
        )
    if kind.accepts_key:
        kw["key"] = key
    if kind.accepts_sparse_dims:
        kw["sparse_dims"] = sparse_dims
    return resolve(kind.dataset)(source, where, columns, **kw)  # type: ignore[no-any-return]


# The Dataset openers of the kinds whose readers live in this package (see inputs.kinds.KINDS).


def dask_dataset(source: Any, where: str, columns: Any, **kw: Any) -> BaseDataset:
    """A Dask array, read block by block."""
    from ..format.schema import check_columns
    from .blocks import DaskDataset

    ds = DaskDataset(source, where=where, **kw)
    check_columns(ds.column_specs, columns, where)
    return ds


def table_dataset(source: Any, where: str, columns: Any, **kw: Any) -> BaseDataset:
    """A pyarrow Table or pandas DataFrame, each column as stored."""
    from ..inputs.arrow import as_arrow, stored_columns

    return _in_memory(stored_columns(as_arrow(source), where), where, columns, **kw)


def dict_dataset(source: Any, where: str, columns: Any, **kw: Any) -> BaseDataset:
    """A dict of columns."""
    return _in_memory(source, where, columns, **kw)


def array_dataset(source: Any, where: str, columns: Any, **kw: Any) -> BaseDataset:
    """One array (NumPy, memmap, ``.npy`` path, torch tensor, CSR or scipy.sparse) as ``"x"``."""
    return _in_memory({"x": source}, where, columns, **kw)


def _in_memory(arrays: Any, where: str, columns: Any, **kw: Any) -> BaseDataset:
    from ..format.schema import check_columns
    from ..inputs.arraylike import columns_of
    from .inmemory import MemoryDataset

    arrays, cols = columns_of(arrays, where)
    return MemoryDataset(arrays, check_columns(cols, columns, where), where=where, **kw)


def _describe(source: Any, kind: Kind) -> str:
    import numpy as np

    if isinstance(source, np.memmap) and source.filename:
        return f"memmap {source.filename}"
    return kind.label or type(source).__name__
