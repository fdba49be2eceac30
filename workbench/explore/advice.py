"""``wb.advise(obj)``: which layout, shard size, chunk or row-group rows, shuffle order and loader
settings suit this data on this machine, each with its reason, backed by a short measurement: a
few batches read in the current layout in each order and, for data small enough to convert in a
moment, in the proposed store.

>>> a = advise("demo_data/demo.store", batch_size=256, shuffle="full", measure=False)
>>> [r.topic for r in a.recommendations][:2], a.situation["fits"]
(['layout', 'shuffle'], True)
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from typing import Any

from ..errors import InvalidInputError
from ..monitoring.container import container_limits
from .chunk_rules import Grid, grid_issues
from .inspection import inspect
from .layout_rules import Recommendation, Situation, recommend
from .shown import Shown

__all__ = ["Advice", "advise"]

CONVERT_BELOW = 64 << 20  # convert a copy to measure the proposed store only below this size
MEASURE_S = 0.5  # per order and layout


@dataclass(repr=False)
class Advice(Shown):
    """What :func:`advise` recommends, and why; prints as text, renders as HTML in Jupyter.

    Parameters
    ----------
    source : str
        The input advised on.
    situation : dict
        The facts the advice rests on: bytes, rows, row bytes, RAM, layout, the read
        amplification of each order, whether the data ``fits`` in the page cache.
    recommendations : list of Recommendation
        Most important first: each a ``topic``, a ``value``, its ``reason`` and ``code``.
    measurements : list of dict
        ``{"layout", "order", "rows_per_s"}`` of each batch-read measured.
    notes : list of str
        What was or was not measured, and why.
    """

    source: str
    situation: dict[str, Any]
    recommendations: list[Recommendation]
    measurements: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    view = "advice"  # drawn by the shell's views (explore.shown)

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "situation": self.situation,
            "notes": self.notes,
            "recommendations": [r.to_dict() for r in self.recommendations],
            "measurements": self.measurements,
        }

    def __repr__(self) -> str:
        top = ", ".join(f"{r.topic}={r.value}" for r in self.recommendations[:2])
        return f"Advice({self.source}: {top}, ...)"


def advise(
    obj: Any,
    batch_size: int = 1024,
    shuffle: str = "full",
    ram_bytes: int | None = None,
    *,
    measure: bool = True,
) -> Advice:
    """Advice for reading ``obj`` (anything ``wb.inspect`` takes) in batches of ``batch_size`` in
    ``shuffle`` order, with ``ram_bytes`` of page cache (default: the memory available now).

    Parameters
    ----------
    obj : path, array, table or dataset
        Anything :func:`~workbench.explore.inspection.inspect` takes.
    batch_size : int, default 1024
        Rows a batch.
    shuffle : str, default "full"
        The order to read in: one of ``wb.ORDERS``.
    ram_bytes : int, optional
        Bytes of page cache to plan for (default: the memory available to this process, under
        its cgroup's limit when it has one).
    measure : bool, default True
        Read a few batches in each order, in the current layout and (for inputs below 64 MiB,
        converted into a temporary folder) in the proposed store.

    Returns
    -------
    Advice

    Raises
    ------
    InvalidInputError
        ``shuffle`` is not an order name.

    Examples
    --------
    >>> a = advise("x.npy", batch_size=128, ram_bytes=1 << 10, measure=False)   # 1 KiB of cache
    >>> {r.topic: r.value for r in a.recommendations}["shuffle"]
    'block'
    """
    from ..loading.sampling import ORDERS

    if shuffle not in ORDERS:
        raise InvalidInputError(f"shuffle={shuffle!r}; use one of {ORDERS}")
    ins = inspect(obj, batch_size=batch_size)
    counts = [a.rows for a in ins.arrays]
    rows = max(set(counts), key=counts.count)  # the row count most arrays share (not CSR parts)
    arrays = [a for a in ins.arrays if a.rows == rows]
    dense = [a for a in arrays if not a.storage.get("sparse")] or arrays
    row_bytes = sum(int(a.stored_row_bytes or a.row_bytes) for a in arrays)
    weight = sum(a.row_bytes for a in dense) or 1
    costed = ("sequential", "block", "full")  # the shard order costs what block order does
    amp = {
        o: sum(ins.costs[a.name][o].amplification * a.row_bytes for a in dense) / weight
        for o in costed
    }
    amp["shard"] = amp["block"]
    ram = int(ram_bytes if ram_bytes is not None else container_limits().available)
    sit = Situation(
        bytes=rows * row_bytes,
        ram=ram,
        row_bytes=row_bytes,
        rows=rows,
        layout=dense[0].unit,
        amplification=amp,
        shuffle=shuffle,
        batch_size=batch_size,
        source=str(ins.source),
        is_ours=ins.kind == "dataset",
        convert_call=_convert_call(str(ins.source), ins.kind),
    )
    recs = recommend(sit) + chunk_recommendations(ins, batch_size, shuffle)
    advice = Advice(str(ins.source), {**sit.__dict__, "fits": sit.fits}, recs)
    if measure:
        _measure(obj, ins, sit, advice)
    return advice


def chunk_recommendations(ins: Any, batch_size: int, shuffle: str) -> list[Recommendation]:
    """What the Zarr chunk grid of each array costs these batches (``chunk_rules``)."""
    out, seen = [], set()
    for a in ins.arrays:
        chunks = a.storage.get("chunks") if a.unit == "zarr chunk" else None
        if not chunks or not a.shape:
            continue
        compressors = ", ".join(
            t for t in (a.storage.get("filters"), a.storage.get("compressors")) if t
        )
        grid = Grid(
            a.name,
            a.rows,
            a.shape[1:],
            tuple(chunks),
            a.row_bytes,
            bool(a.storage.get("compressed")),
            compressors,
            str(ins.source),
        )
        for issue in grid_issues(grid, batch_size, shuffle):
            if issue.id not in seen:
                seen.add(issue.id)
                out.append(Recommendation("zarr chunks", issue.id, issue.evidence, issue.fix))
    return out


def _convert_call(source: str, kind: str) -> str:
    if kind == "hdf5" and ":" in source and not os.path.exists(source):
        path, key = source.rsplit(":", 1)
        return f'wb.convert("{path}", "data.store", key="{key}")'
    return ""


def _rate(ds: Any, batch_size: int, order: str) -> float:
    from ..bench.throughput import measure
    from ..loading.loaders import loader

    return measure(
        loader(ds, batch_size=batch_size, shuffle=order, num_workers=0),
        max_batches=50,
        max_seconds=MEASURE_S,
    ).samples_per_s


def _measure(obj: Any, ins: Any, sit: Situation, advice: Advice) -> None:
    from ..datasets import open_dataset

    orders = list(dict.fromkeys([sit.shuffle, "block", "sequential"]))
    try:
        current = open_dataset(obj)
        for order in orders:
            advice.measurements.append(
                {
                    "layout": f"current ({ins.arrays[0].unit})",
                    "order": order,
                    "rows_per_s": _rate(current, sit.batch_size, order),
                }
            )
    except Exception as exc:  # a kind open_dataset cannot read: the advice stands without it
        advice.notes.append(f"not measured in the current layout: {type(exc).__name__}: {exc}")
        return
    if sit.is_ours or sit.bytes > CONVERT_BELOW:
        if not sit.is_ours:
            advice.notes.append(
                f"the proposed store was not measured: {sit.bytes >> 20} MiB is "
                f"above the {CONVERT_BELOW >> 20} MiB converted for a quick check"
            )
        return
    from ..conversion.pipeline import convert

    with tempfile.TemporaryDirectory(prefix="workbench-advise-") as tmp:
        store = os.path.join(tmp, "proposed.store")
        convert(obj if not isinstance(obj, os.PathLike) else os.fspath(obj), store, progress=False)
        proposed = open_dataset(store)
        for order in orders:
            advice.measurements.append(
                {
                    "layout": "proposed store",
                    "order": order,
                    "rows_per_s": _rate(proposed, sit.batch_size, order),
                }
            )
        advice.notes.append(
            "the proposed store was converted into a temporary folder to measure it"
        )
