"""``wb.mix``: batches drawn from several datasets by weight, as one dataset the loader reads
with a single dataset's guarantees (seeded order, rank split, exact and elastic resume,
``reconfigure``): the loader's sampler orders the mixture's rows, :mod:`.mixplan` says which
source and row each one is.

The loader numbers the mixture's rows across epochs (row ``v`` of epoch ``e`` is
``e * len(mixture) + v``; ``epoch_rows``), so a source larger than its share is read through
over the epochs instead of giving the same rows each time.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, default_collate

from ..errors import InvalidInputError
from ..units import human_bytes
from .mixplan import MixPlan
from .protocols import ReadsBatches

__all__ = ["Mixture", "mix"]


def _columns(name: str, ds: Any) -> dict[str, tuple[torch.dtype, tuple[int, ...]]]:
    """Each column's dtype and row shape, from one row read through the dataset's batched read
    (a plain Dataset: its first item, a dict of tensors)."""
    if isinstance(ds, ReadsBatches):
        row = ds.get_batch(np.zeros(1, np.int64))
    else:
        item = ds[0]
        if not isinstance(item, Mapping):
            raise InvalidInputError(
                f"wb.mix: source {name!r} ({type(ds).__name__}) gives {type(item).__name__} "
                "items; a mixture matches columns by name, so each item must be a dict of "
                "tensors (or pass a workbench dataset: wb.open_dataset)"
            )
        row = default_collate([item])
    got = {}
    for col, v in row.items():
        if not isinstance(v, torch.Tensor) or v.is_sparse or v.layout != torch.strided:
            raise InvalidInputError(
                f"wb.mix: column {col!r} of source {name!r} is not a dense tensor; mix dense "
                "columns (open_dataset(..., sparse='dense') or columns=[...] without it)"
            )
        got[col] = (v.dtype, tuple(v.shape[1:]))
    return got


class Mixture(Dataset):
    """Several datasets as one, each row drawn from a source by weight (built by :func:`mix`).

    Parameters
    ----------
    sources : mapping of str to Dataset
        The datasets by name; their columns are matched by name.
    weights : mapping of str to float, optional
        Each source's share (default: proportional to the sizes).
    epoch : "smallest", "replacement" or int, default "smallest"
        What an epoch is (see :func:`mix`).
    seed : int, default 0
        Seeds which rows of each source an epoch takes.
    source_column : str or None, default "source"
        The column holding each row's source number; None: none.

    Raises
    ------
    InvalidInputError
        Weights, ``epoch`` or columns that do not fit (the message says which).
    """

    def __init__(
        self,
        sources: Mapping[str, Any],
        weights: Mapping[str, float] | None = None,
        *,
        epoch: Any = "smallest",
        seed: int = 0,
        source_column: str | None = "source",
    ) -> None:
        if not sources:
            raise InvalidInputError("wb.mix needs at least one dataset: {'name': dataset}")
        self.names = tuple(str(n) for n in sources)
        self.sources = tuple(sources.values())
        if weights is None:
            weights = {n: float(len(ds)) for n, ds in zip(self.names, self.sources)}
        if set(weights) != set(self.names):
            raise InvalidInputError(
                f"wb.mix: weights name {sorted(weights)} but the datasets are "
                f"{sorted(self.names)}; give one weight per dataset, by the same names"
            )
        self.plan = MixPlan(
            [len(ds) for ds in self.sources], [weights[n] for n in self.names], epoch, seed
        )
        schema = [_columns(n, ds) for n, ds in zip(self.names, self.sources)]
        for name, cols in zip(self.names[1:], schema[1:]):
            if cols != schema[0]:
                raise InvalidInputError(_mismatch(self.names[0], schema[0], name, cols))
        if source_column is not None and source_column in schema[0]:
            raise InvalidInputError(
                f"wb.mix: the datasets have a column {source_column!r} already; pass "
                "source_column= another name (or None: no column naming the source)"
            )
        self.schema, self.source_column = schema[0], source_column
        self.columns = (*self.schema, *([source_column] if source_column else []))
        row = sum(int(np.prod(s, dtype=np.int64)) * d.itemsize for d, s in self.schema.values())
        self.row_nbytes = self.dense_row_nbytes = int(row) + (8 if source_column else 0)
        self.epoch_rows = self.plan.rows
        self.rows_read = [0] * len(self.sources)  # rows read from each source, this process

    def __len__(self) -> int:
        return self.plan.rows

    @property
    def weights(self) -> dict[str, float]:
        return dict(zip(self.names, self.plan.weights))

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {k: v[0] for k, v in self.get_batch(np.array([int(i)])).items()}

    def __getitems__(self, indices: list[int]) -> dict[str, torch.Tensor]:
        return self.get_batch(np.asarray(indices, np.int64))

    def get_batch(self, indices: Any, out: dict[str, torch.Tensor] | None = None) -> Any:
        """The rows at ``indices`` as one batch (column -> tensor), in the order asked; an index
        ``e * len(self) + v`` is row ``v`` of epoch ``e``."""
        idx = np.asarray(indices, dtype=np.int64)
        n = len(idx)
        if out is None:
            out = {c: torch.empty((n, *s), dtype=d) for c, (d, s) in self.schema.items()}
            if self.source_column:
                out[self.source_column] = torch.empty(n, dtype=torch.int64)
        epoch, slot = np.divmod(idx, self.plan.rows)
        src, rows = np.empty(n, np.int64), np.empty(n, np.int64)
        for e in np.unique(epoch).tolist():
            at = epoch == e
            src[at], rows[at] = self.plan.locate(slot[at], int(e))
        for s in np.unique(src).tolist():
            at = np.flatnonzero(src == s)
            mine = rows[at]
            order = np.argsort(mine, kind="stable")  # ascending rows read fastest
            part = self._read(s, mine[order])
            where = torch.from_numpy(at[order])
            for c in self.schema:
                out[c].index_copy_(0, where, part[c])
            self.rows_read[s] += len(at)
        if self.source_column:
            out[self.source_column].copy_(torch.from_numpy(src))
        return out

    def _read(self, s: int, rows: np.ndarray) -> dict[str, torch.Tensor]:
        ds = self.sources[s]
        if isinstance(ds, ReadsBatches):
            return ds.get_batch(rows)
        return default_collate([ds[int(i)] for i in rows])

    def __repr__(self) -> str:
        p = self.plan
        said = (
            "until a source runs out"
            if p.epoch == "smallest"
            else "rows drawn with replacement"
            if p.replacement
            else "a fixed number of rows, sources begun again as needed"
        )
        lines = [
            f"Mixture({len(self.names)} sources; an epoch: {p.rows:,} rows, {said}; seed "
            f"{p.seed}; {human_bytes(self.row_nbytes)} a row)"
        ]
        lines += [
            f"  {n}: {w:.0%} ({t:,} of {size:,} rows an epoch)"
            for n, w, t, size in zip(self.names, p.weights, p.take, p.sizes)
        ]
        return "\n".join(lines)


def _mismatch(first: str, want: dict[str, Any], name: str, got: dict[str, Any]) -> str:
    missing, extra = sorted(set(want) - set(got)), sorted(set(got) - set(want))
    differ = [c for c in want if c in got and got[c] != want[c]]
    said = [f"missing {missing}" if missing else "", f"extra {extra}" if extra else ""]
    said += [
        f"{c!r} is {got[c][0]} {list(got[c][1])} there but {want[c][0]} {list(want[c][1])} "
        f"in {first!r}"
        for c in differ
    ]
    return (
        f"wb.mix: source {name!r} does not have the columns of {first!r}: "
        f"{'; '.join(x for x in said if x)}; select the same columns in each "
        "(wb.open_dataset(path, columns=[...])) with the same dtypes and shapes"
    )


def mix(
    datasets: Mapping[str, Any],
    weights: Mapping[str, float] | None = None,
    *,
    epoch: Any = "smallest",
    seed: int = 0,
    source_column: str | None = "source",
) -> Mixture:
    """Several datasets as one, each batch drawn from them by weight: what MosaicML Streaming's
    ``Stream(proportion=)``, litdata's ``CombinedStreamingDataset(weights=)`` and tf.data's
    ``sample_from_datasets`` do, with :func:`workbench.loader`'s seeded order, rank split,
    resume and ``reconfigure`` over the mixture.

    Parameters
    ----------
    datasets : mapping of str to Dataset
        The sources by name: workbench datasets, or map-style Datasets whose items are dicts of
        tensors. Their columns are matched by name (same dtypes and row shapes).
    weights : mapping of str to float, optional
        Each source's share of the rows (normalised). Default: proportional to their sizes.
    epoch : "smallest", "replacement" or int, default "smallest"
        What an epoch is: until the source that runs out first (for its weight) is exhausted
        (the larger ones go on where they stopped, next epoch); ``sum(len)`` rows drawn with
        replacement; or that many rows, each source read through and begun again as needed.
    seed : int, default 0
        Seeds which rows of each source an epoch takes (the loader's ``seed`` orders them).
    source_column : str or None, default "source"
        A column holding each row's source number (its place in ``datasets``); None: none.

    Returns
    -------
    Mixture
        A dataset; its repr says the shares and what an epoch is.

    Raises
    ------
    InvalidInputError
        Weights that do not name the datasets or are not positive, an unknown ``epoch``, or
        sources whose columns differ (the message names them).

    Examples
    --------
    >>> a = wb.open_dataset({"x": np.zeros((900, 2), "float32")})
    >>> b = wb.open_dataset({"x": np.ones((100, 2), "float32")})
    >>> m = wb.mix({"a": a, "b": b}, weights={"a": 0.5, "b": 0.5}); len(m)
    200
    >>> batch = next(iter(wb.loader(m, batch_size=200, shuffle="full")))
    >>> torch.bincount(batch["source"]).tolist(), batch["x"][batch["source"] == 1].min().item()
    ([100, 100], 1.0)
    """
    return Mixture(datasets, weights, epoch=epoch, seed=seed, source_column=source_column)
