"""The GPU as the Monitor samples it: NVML's utilization, memory and PCIe traffic of GPU 0, and
the host memory torch has pinned for CUDA. Without a GPU (or without nvidia-ml-py) each says why.
"""

from __future__ import annotations

from typing import Any

__all__: list[str] = []


def pinned() -> dict[str, Any]:
    """Host memory pinned by torch's CUDA caching allocator, or why there is none.

    >>> pinned()["available"] in (True, False)
    True
    """
    import torch

    if not torch.cuda.is_available():
        return {"available": False, "reason": "no GPU: nothing is pinned for CUDA here"}
    stats = torch.cuda.host_memory_stats() if hasattr(torch.cuda, "host_memory_stats") else {}
    return {"available": True, "bytes": int(stats.get("allocated_bytes.all.current", 0))}


def gpu_metrics() -> dict[str, Any]:
    """Utilization, memory and PCIe RX/TX of GPU 0 from NVML, or why there are none.

    >>> gpu_metrics()["available"] in (True, False)
    True
    """
    try:
        import pynvml
    except ImportError:
        return {"available": False, "reason": "no GPU metrics: nvidia-ml-py is not installed"}
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        return {"available": False, "reason": f"no GPU: NVML says {exc}"}
    try:
        h = pynvml.nvmlDeviceGetHandleByIndex(0)
        util = pynvml.nvmlDeviceGetUtilizationRates(h)
        mem = pynvml.nvmlDeviceGetMemoryInfo(h)
        rx = pynvml.nvmlDeviceGetPcieThroughput(h, pynvml.NVML_PCIE_UTIL_RX_BYTES) * 1024
        tx = pynvml.nvmlDeviceGetPcieThroughput(h, pynvml.NVML_PCIE_UTIL_TX_BYTES) * 1024
        return {
            "available": True,
            "name": str(pynvml.nvmlDeviceGetName(h)),
            "utilization": util.gpu / 100,
            "memory_used_bytes": int(mem.used),
            "memory_total_bytes": int(mem.total),
            "pcie_rx_bytes_per_s": rx,
            "pcie_tx_bytes_per_s": tx,
        }
    except pynvml.NVMLError as exc:
        return {"available": False, "reason": f"no GPU: NVML says {exc}"}
    finally:
        pynvml.nvmlShutdown()
