"""``wb.preview(obj)``: the first rows, or a seeded random sample, as a table; a column whose
rows are images (2-D, or 3-D with 1 or 3 channels) is drawn as thumbnails, and a sparse column
shows each row's nonzero indices.

>>> p = preview("demo_data/demo.store", n=3)
>>> p.indices, p.kinds["features"], p.kinds["tokens"], len(p.columns["tokens"][0]) > 0
([0, 1, 2], 'vector', 'sparse', True)
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import InvalidInputError
from .shown import Shown

__all__ = ["Preview", "preview"]


@dataclass(repr=False)
class Preview(Shown):
    """Rows ``indices`` of ``source``, as :func:`preview` shows them.

    Parameters
    ----------
    source : str
        The input's path, or its type's name.
    indices : list of int
        The rows shown, in row order.
    columns : dict of str to list of numpy.ndarray
        ``columns[name][i]`` is row ``indices[i]`` (a sparse column: its nonzero indices).
    kinds : dict of str to str
        ``kinds[name]`` is one of "scalar", "vector", "image", "sparse", or "coordinate" (an
        xarray coordinate that labels the rows, shown beside the columns).
    dims : dict of str to tuple of str
        An xarray input's dimension names of each column (empty for other inputs).
    """

    source: str
    indices: list[int]
    columns: dict[str, list[np.ndarray]]
    kinds: dict[str, str]
    dims: dict[str, tuple[str, ...]] = field(default_factory=dict)
    view = "preview"  # drawn by the shell's views (explore.shown)

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "indices": self.indices,
            "kinds": self.kinds,
            "dims": {k: list(v) for k, v in self.dims.items()},
            "columns": {
                k: [np.asarray(v).tolist() for v in rows] for k, rows in self.columns.items()
            },
        }

    def __repr__(self) -> str:
        return f"Preview({self.source}: rows {self.indices})"


def image_kind(row_shape: tuple[int, ...]) -> bool:
    """Rows shaped (H, W), (H, W, 1|3) or (1|3, H, W), at least 4 x 4, are images."""
    if len(row_shape) == 2:
        return min(row_shape) >= 4
    if len(row_shape) == 3:
        return (row_shape[2] in (1, 3) and min(row_shape[:2]) >= 4) or (
            row_shape[0] in (1, 3) and min(row_shape[1:]) >= 4
        )
    return False


def preview(
    obj: Any,
    n: int = 8,
    *,
    random: bool = False,
    seed: int = 0,
    columns: str | list[str] | None = None,
) -> Preview:
    """``n`` rows of ``obj`` (anything ``wb.open_dataset`` opens): the first ones, or with
    ``random=True`` a sample drawn with ``seed`` (shown in row order).

    Parameters
    ----------
    obj : path, array, table or dataset
        Anything ``wb.open_dataset`` opens.
    n : int, default 8
        Rows to show (at most all of them).
    random : bool, default False
        A random sample instead of the first rows.
    seed : int, default 0
        Seeds the sample.
    columns : str or list of str, optional
        The columns to show (default: all).

    Returns
    -------
    Preview

    Raises
    ------
    InvalidInputError
        ``n`` is below 1 (and whatever ``open_dataset`` raises for ``obj``).

    Examples
    --------
    >>> preview(np.arange(20).reshape(10, 2), n=2, random=True, seed=1).indices
    [4, 5]
    """
    import torch

    from ..datasets import open_dataset

    if n < 1:
        raise InvalidInputError(f"n={n}; pass how many rows to show, at least 1")
    ds = open_dataset(obj, columns=columns, sparse="csr")
    total = len(ds)
    k = min(n, total)
    if random:
        idx = np.sort(np.random.default_rng(seed).choice(total, k, replace=False))
    else:
        idx = np.arange(k)
    batch = ds.get_batch(idx)
    cols: dict[str, list[np.ndarray]] = {}
    kinds: dict[str, str] = {}
    for name, t in batch.items():
        if t.layout == torch.sparse_csr:
            crow, col = t.crow_indices().numpy(), t.col_indices().numpy()
            cols[name] = [col[crow[i] : crow[i + 1]] for i in range(len(idx))]
            kinds[name] = "sparse"
            continue
        a = t.numpy()
        cols[name] = list(a)
        row_shape = tuple(a.shape[1:])
        kinds[name] = "scalar" if not row_shape else "image" if image_kind(row_shape) else "vector"
    labels = getattr(ds, "coordinates", None)  # xarray: the coordinates along the rows
    for name, values in (labels(idx) if callable(labels) else {}).items():
        cols.setdefault(name, list(values))
        kinds.setdefault(name, "coordinate")
    dims = dict(getattr(ds, "dims", None) or {})
    if isinstance(obj, (str, os.PathLike)):
        source = os.fspath(obj)
    else:
        source = ds.where if dims or ds.kind == "zarr" else type(obj).__name__
    return Preview(source, [int(i) for i in idx], cols, kinds, dims)
