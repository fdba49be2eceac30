"""Load: batches from any map-style Dataset, shuffled, worker-safe, resumable, onto the GPU.

Data flows down this list:

- ``config``: :class:`LoaderConfig`, every option, validated, swapped whole by ``reconfigure``;
  ``automatic``: what the options left None become;
- ``orders``, ``sampling``, ``splits`` and ``resume`` (pure): one epoch's order of rows, which
  rows go in which batch, how windows and ranks cut an epoch, and a sampler's saved position;
- ``ranks``: the data-parallel rank; ``advice``: read-ahead advice for cold block orders;
- ``fetch`` and ``batches``: reading one batch from any Dataset, its bytes, pinning;
- ``passes``: fetching in the caller (``threads``: on read-ahead threads; ``workers/``: in worker
  processes), each batch's stages timed where they run; ``ranges``: those stages as profiler
  ranges while a profiler runs;
- ``epochs``: the iterator the consumer holds, which starts and swaps those passes;
- ``feeds``: a loader's sampler, the passes it starts and the batches they delivered;
- ``loaders``: :class:`Loader` and :func:`loader`, the epochs and their state;
- ``device``: :func:`to_device`, batches onto a GPU one ahead (each copy timed);
- ``profiling``: ``workbench profile``, a loader run with the verdict and the stage table.

>>> dl = wb.loading.loader(wb.open_dataset({"x": np.zeros((100, 2), "float32")}), batch_size=50)
>>> [b["x"].shape[0] for b in dl]
[50, 50]
"""

from __future__ import annotations

from .._lazy import attach

_EXPORTS = {
    "ORDERS": ".orders",
    "BatchSampler": ".sampling",
    "Loader": ".loaders",
    "LoaderConfig": ".config",
    "epoch_order": ".orders",
    "loader": ".loaders",
    "measure_h2d": ".device",
    "shuffle_quality": ".orders",
    "to_device": ".device",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = attach(__name__, _EXPORTS)
