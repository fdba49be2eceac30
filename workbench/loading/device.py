"""Move batches to the GPU while the previous one is in use: reusable pinned staging buffers,
copies on a side CUDA stream, one batch of look-ahead, and stream sync so nothing is read or
reused too early.

>>> ds = wb.open_dataset({"x": np.ones((4096, 8), "float32")})
>>> for batch in to_device(wb.loader(ds, batch_size=1024, num_workers=0), "cuda"):
...     total = batch["x"].sum()     # on the GPU; without CUDA the batches pass through unchanged
>>> float(total)
8192.0
"""

from __future__ import annotations

import time
from time import perf_counter
from typing import Any, Callable, Iterable, Iterator

import torch

from .batches import map_tensors
from .workers.ranges import profiling, stage_range

__all__ = ["measure_h2d", "to_device"]

_GROW = 1.25  # headroom when a staging buffer grows: a slowly growing batch won't realloc each time


class _Sparse:
    """A sparse tensor that moves with ``.to()`` at hand-off, on the consumer's stream."""

    def __init__(self, tensor: torch.Tensor) -> None:
        self.tensor = tensor


class _Staging:
    """Pinned host buffers for one batch in flight, kept per column and dtype and reused."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.buffers: dict[tuple, torch.Tensor] = {}
        # the copy's start and end on the side stream: its device time from CUDA events
        self.began, self.event = (
            torch.cuda.Event(enable_timing=True),
            torch.cuda.Event(enable_timing=True),
        )
        self.timed: tuple[float, float] | None = None  # (started, host seconds) of its last copy
        self.copies: list[torch.Tensor] = []
        self.held: list[torch.Tensor] = []  # already-pinned sources copied directly: keep alive

    def _pinned(self, path: tuple, t: torch.Tensor) -> torch.Tensor:
        key, n = (path, t.dtype), t.numel()
        buf = self.buffers.get(key)
        if buf is None or buf.numel() < n:
            buf = torch.empty(
                max(n, int(n * _GROW) if buf is not None else n), dtype=t.dtype, pin_memory=True
            )
            self.buffers[key] = buf
        view = buf[:n].view(t.shape)
        view.copy_(t)
        return view

    def _move(self, path: tuple, t: Any) -> Any:
        if not isinstance(t, torch.Tensor) or t.device == self.device:
            return t
        if t.layout != torch.strided:
            return _Sparse(t)
        if t.device.type != "cpu" or t.is_pinned():
            src = t
            self.held.append(t)
        else:
            src = self._pinned(path, t)
        out = torch.empty(t.shape, dtype=t.dtype, device=self.device)
        out.copy_(src, non_blocking=True)
        self.copies.append(out)
        return out

    def stage(self, batch: Any, stream: torch.cuda.Stream) -> Any:
        """Start copying ``batch`` on ``stream``; its device tensors are not safe to read yet."""
        self.event.synchronize()  # the copy that last read these buffers has finished
        self.copies, self.held = [], []
        self.began.record(stream)
        with torch.cuda.stream(stream):
            moved = map_tensors(batch, self._move, paths=True)
        self.event.record(stream)
        return moved

    def copied(self, push: Callable[[tuple[float, float, float]], None]) -> None:
        """Report the last copy's (started, host seconds, device seconds), once it finished."""
        if self.timed is not None:
            self.event.synchronize()
            started, host = self.timed
            push((started, host, self.began.elapsed_time(self.event) / 1e3))
            self.timed = None

    def hand_off(self, moved: Any) -> Any:
        """Make the consumer's current stream wait for the copy, then give the batch out."""
        current = torch.cuda.current_stream(self.device)
        current.wait_event(self.event)
        for t in self.copies:  # side-stream memory: keep until the consumer is done
            t.record_stream(current)
        return map_tensors(moved, lambda x: x.tensor.to(self.device), leaf=_Sparse)


def _cuda_batches(
    batches: Iterable[Any], device: torch.device, push: Callable[..., None] | None
) -> Iterator[Any]:
    stream = torch.cuda.Stream(device)
    slots = [_Staging(device), _Staging(device)]  # two, so staging batch i+1 never waits on batch i
    pending: tuple[_Staging, Any] | None = None
    for i, batch in enumerate(batches):
        slot = slots[i % 2]
        if push is not None:
            slot.copied(push)  # its previous copy (two batches ago) is done by now
        t0 = perf_counter()
        if profiling():  # once a batch: no range costs without a profiler
            with stage_range("workbench.to_device"):
                moved = slot.stage(batch, stream)
        else:
            moved = slot.stage(batch, stream)
        slot.timed = (t0, perf_counter() - t0)
        if pending is not None:
            yield pending[0].hand_off(pending[1])
        pending = (slot, moved)
    if pending is not None:
        yield pending[0].hand_off(pending[1])
    if push is not None:
        for slot in sorted(slots, key=lambda s: s.timed[0] if s.timed else 0.0):
            slot.copied(push)


def _other_batches(
    batches: Iterable[Any], device: torch.device, push: Callable[..., None] | None
) -> Iterator[Any]:
    for batch in batches:
        t0 = perf_counter()
        moved = map_tensors(batch, lambda x: x.to(device))
        if push is not None:
            push((t0, perf_counter() - t0, 0.0))
        yield moved


def to_device(batches: Iterable[Any], device: str | torch.device = "cuda") -> Iterator[Any]:
    """Yield each batch (tensor, or dict/list/tuple of them) on ``device``, copying one batch ahead.

    On a CPU device, or when CUDA is not available, batches pass through unchanged (same objects).
    Given a loader, each copy's time joins its stages (``loader.stages``' ``to_device``: host
    seconds, plus the copy's device seconds from CUDA events).

    Parameters
    ----------
    batches : iterable
        Batches: a tensor, or a dict, list or tuple of them (sparse tensors too).
    device : str or torch.device, default "cuda"
        Where to put them; "cuda" means the current CUDA device.

    Yields
    ------
    batch
        Each batch, of the same structure, on ``device``; copies go through reused pinned
        buffers on a side stream, one batch ahead of the one given out.

    Examples
    --------
    >>> batches = [{"x": torch.zeros(2, 3)}, {"x": torch.ones(2, 3)}]
    >>> all(out is b for out, b in zip(to_device(batches, "cpu"), batches))  # CPU: the same ones
    True
    >>> next(to_device(batches, "cuda"))["x"].device  # doctest: +SKIP
    device(type='cuda', index=0)
    """
    dev = torch.device(device)
    # a loader's stage window gets each copy's seconds (its stages' to_device)
    push = getattr(getattr(batches, "stages", None), "push_device", None)
    if dev.type == "cuda" and torch.cuda.is_available():
        if dev.index is None:
            dev = torch.device("cuda", torch.cuda.current_device())
        return _cuda_batches(batches, dev, push)
    if dev.type in ("cpu", "cuda"):
        return iter(batches)
    return _other_batches(batches, dev, push)


def measure_h2d(
    nbytes: int = 256 << 20, repeats: int = 10, device: str | torch.device = "cuda"
) -> dict[str, Any]:
    """Host-to-device GB/s of :func:`to_device` from pageable memory vs a plain pinned ``copy_``.

    Parameters
    ----------
    nbytes : int, default 256 MiB
        Bytes a copy (a float32 tensor).
    repeats : int, default 10
        Copies timed, after one warm-up round.
    device : str or torch.device, default "cuda"
        A CUDA device.

    Returns
    -------
    dict
        ``{"available": False}`` without CUDA; else ``device`` (its name), ``nbytes``,
        ``repeats``, ``to_device_gbps``, ``pinned_copy_gbps``, ``pageable_copy_gbps`` (a plain
        ``copy_`` from pageable memory) and ``ratio_to_pinned``.

    Examples
    --------
    >>> r = measure_h2d(64 << 20)        # {"available": False} without CUDA
    >>> r["available"] == torch.cuda.is_available()
    True
    >>> r["to_device_gbps"] / r["pinned_copy_gbps"]   # doctest: +SKIP
    0.97
    """
    dev = torch.device(device)
    if dev.type != "cuda" or not torch.cuda.is_available():
        return {"available": False}
    src = torch.ones(nbytes // 4, dtype=torch.float32)
    pinned, dst = src.pin_memory(), torch.empty(src.shape, dtype=src.dtype, device=dev)

    def gbps(step: Callable[[], None]) -> float:
        step()  # warm-up: allocations, pinned buffers, CUDA context
        torch.cuda.synchronize(dev)
        start = time.perf_counter()
        step()
        torch.cuda.synchronize(dev)
        return nbytes * repeats / (time.perf_counter() - start) / 1e9

    def ours() -> None:
        for _ in to_device(({"x": src} for _ in range(repeats)), dev):
            pass

    def plain() -> None:
        for _ in range(repeats):
            dst.copy_(pinned, non_blocking=True)

    def pageable() -> None:
        for _ in range(repeats):
            dst.copy_(src)

    ours_gbps, plain_gbps, pageable_gbps = gbps(ours), gbps(plain), gbps(pageable)
    return {
        "available": True,
        "device": torch.cuda.get_device_name(dev),
        "nbytes": nbytes,
        "repeats": repeats,
        "to_device_gbps": ours_gbps,
        "pinned_copy_gbps": plain_gbps,
        "pageable_copy_gbps": pageable_gbps,
        "ratio_to_pinned": ours_gbps / plain_gbps,
    }
