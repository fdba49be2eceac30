"""The real peers of ``benchmarks/loaders.py``: MosaicML Streaming, litdata; shuffled, local disk.

Each writes the bench rows once in its own format (Mosaic: ``MDSWriter``, uncompressed MDS shards;
litdata: ``litdata.optimize``, uncompressed chunks), cached beside the other bench files, then
reads a shuffled epoch with its own dataset class (shuffle on, seed 0) and its own recommended
loader (Mosaic: torch ``DataLoader``; litdata: ``StreamingDataLoader``), consumed like every other
contender. Both are installed by ``make bench`` with ``--no-deps`` (see ``benchmarks/README.md``):
their metadata pins torchvision, and Mosaic pins ``numpy<2.2`` and ``transformers<5``, which would
downgrade this environment; the packages they import run fine on the versions here.

``import streaming`` imports ``streaming.vision`` (and with it torchvision) at package import;
no torchvision loads against the local torch wheel, and nothing measured here uses the vision
datasets, so the child that measures Mosaic registers an empty ``streaming.vision`` module first
(:func:`import_streaming`; only in that process, only when torchvision is missing).
"""

from __future__ import annotations

import functools
import importlib.util
import os
import shutil
import sys
import time
import types
from pathlib import Path
from typing import Any, Iterator

import numpy as np

try:
    from . import _loadmeasure as lm
except ImportError:  # imported by path from loaders.py's measured child
    import _loadmeasure as lm

PEER_PACKAGES = {"mosaic": "streaming", "litdata": "litdata"}


def available(peer: str) -> bool:
    return importlib.util.find_spec(PEER_PACKAGES[peer]) is not None


def import_streaming() -> Any:
    """``import streaming`` without torchvision: an empty ``streaming.vision`` stands in for the
    vision datasets (unused here) when torchvision cannot be imported."""
    try:
        import torchvision  # noqa: F401
    except Exception:  # missing, or a registry build that does not load against this torch
        sys.modules.setdefault("streaming.vision", types.ModuleType("streaming.vision"))
    # benchmarks/streaming.py (ours) shadows the package when this folder is on sys.path
    here, saved = Path(__file__).resolve().parent, sys.path[:]
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != here]
    try:
        import streaming
    finally:
        sys.path[:] = saved
    return streaming


def _rows(root: Path) -> tuple[np.ndarray, np.ndarray]:
    return np.load(root / "features.npy", mmap_mode="r"), np.load(
        root / "labels.npy", mmap_mode="r"
    )


def _fresh(final: Path) -> Path:
    tmp = final.with_name(final.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    return tmp


def ensure_mds(root: Path) -> tuple[Path, float]:
    """MDS shards of the bench rows (64 MiB each, no compression); (folder, seconds to write)."""
    out = root / "mds"
    if (out / "index.json").exists():
        return out, 0.0
    streaming = import_streaming()
    x, y = _rows(root)
    tmp, t = _fresh(out), time.perf_counter()
    cols = {"features": f"ndarray:float32:{x.shape[1]}", "label": "int64"}
    with streaming.MDSWriter(out=str(tmp), columns=cols, size_limit=64 << 20) as w:
        for a in range(0, len(x), 8192):
            xs, ys = np.ascontiguousarray(x[a : a + 8192]), np.asarray(y[a : a + 8192])
            for i in range(len(xs)):
                w.write({"features": xs[i], "label": int(ys[i])})
    os.replace(tmp, out)
    return out, time.perf_counter() - t


def _litdata_items(a: int, *, root: str, step: int) -> Iterator[dict[str, Any]]:
    x, y = _rows(Path(root))
    xs, ys = np.ascontiguousarray(x[a : a + step]), np.asarray(y[a : a + step])
    for i in range(len(xs)):
        yield {"features": xs[i], "label": int(ys[i])}


def ensure_litdata(root: Path) -> tuple[Path, float]:
    """litdata chunks of the bench rows (``litdata.optimize``, 64 MB chunks, no compression)."""
    import litdata

    out = root / "litdata"
    if (out / "index.json").exists():
        return out, 0.0
    x, _ = _rows(root)
    step = 8192
    tmp, t = _fresh(out), time.perf_counter()
    litdata.optimize(
        fn=functools.partial(_litdata_items, root=str(root), step=step),
        inputs=list(range(0, len(x), step)),
        output_dir=str(tmp),
        chunk_bytes="64MB",
        num_workers=1,
        verbose=False,
        keep_data_ordered=True,
    )
    os.replace(tmp, out)
    return out, time.perf_counter() - t


def mosaic(root: str, batch: int, order: str, workers: int, seconds: float) -> dict[str, Any]:
    """MosaicML Streaming: ``StreamingDataset(local=mds, shuffle=True)`` in a torch DataLoader."""
    from torch.utils.data import DataLoader

    streaming = import_streaming()
    folder, wrote = ensure_mds(Path(root))
    ds = streaming.StreamingDataset(
        local=str(folder), shuffle=order == "full", shuffle_seed=0, batch_size=batch
    )
    r = lm.median_of(
        lambda: iter(DataLoader(ds, batch_size=batch, num_workers=workers)), seconds=seconds
    )
    return {
        **r,
        "note": f"streaming {streaming.__version__}, {ds.shuffle_algo} shuffle"
        + (f"; MDSWriter {wrote:.0f} s" if wrote else ""),
    }


def litdata_peer(root: str, batch: int, order: str, workers: int, seconds: float) -> dict[str, Any]:
    """litdata: ``StreamingDataset(optimized dir, shuffle=True)`` in its ``StreamingDataLoader``."""
    import litdata

    folder, wrote = ensure_litdata(Path(root))
    ds = litdata.StreamingDataset(str(folder), shuffle=order == "full", seed=0)
    r = lm.median_of(
        lambda: iter(litdata.StreamingDataLoader(ds, batch_size=batch, num_workers=workers)),
        seconds=seconds,
    )
    return {
        **r,
        "note": f"litdata {litdata.__version__}" + (f"; optimize {wrote:.0f} s" if wrote else ""),
    }
