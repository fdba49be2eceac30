"""Numbers as people read them (pure: no I/O, no printing).

>>> human_bytes(1536), human_bytes(512), human_bytes(3 << 40)
('1.5 KiB', '512 B', '3.0 TiB')
"""

from __future__ import annotations

__all__: list[str] = []


def human_bytes(n: float) -> str:
    """Bytes in binary units, one decimal above bytes."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    return f"{n:,.1f} TiB"
