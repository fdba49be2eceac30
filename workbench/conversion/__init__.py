"""Convert: a source, read chunk by chunk and validated (``workbench.inputs``), cut into the
shard jobs still to write (``jobs``), written as shards (``shards``: in-process or on Dask) in a
layout (``workbench.layouts``), then committed atomically (``commit``); ``pipeline`` ties them
together; ``publishing`` copies a committed dataset to a URL, CURRENT last.

>>> m = wb.conversion.convert("data.csv", "data.store", target="label", progress=False)
>>> m.num_rows
100
"""

from __future__ import annotations

from .._lazy import attach

_EXPORTS = {"convert": ".pipeline", "publish": ".publishing"}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = attach(__name__, _EXPORTS)
