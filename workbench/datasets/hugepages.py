"""Memory for the RAM tier: anonymous, huge-page backed where the kernel allows, readable by the
loader's worker processes without a copy.

A random 1 KiB row read from 4 KiB pages costs a TLB miss; from 2 MiB pages mostly not. Measured
on this project's 2-core VM (CPU time of a one-thread gather of random 1 KiB rows, 2M rows):
private anonymous memory with ``MADV_HUGEPAGE`` 4.5-4.8M rows/s, like a NumPy copy (NumPy asks
for huge pages itself); a memfd (shmem, 4 KiB pages here) 3.5-3.7M and the page cache 3.5M.

Which memory can have huge pages is the kernel's setting (``/sys/kernel/mm/transparent_hugepage``):
``enabled`` for private anonymous memory, ``shmem_enabled`` for shared memory (memfd, /dev/shm).
So the backing is, best first:

- ``"shared"``: a memfd mapped ``MAP_SHARED`` with ``MADV_HUGEPAGE``, where ``shmem_enabled``
  allows it: forked workers share it even while it is being filled, spawned ones reopen it
  through ``/proc/<pid>/fd`` once it is complete;
- ``"private"``: ``MAP_PRIVATE`` anonymous memory with ``MADV_HUGEPAGE`` where only ``enabled``
  allows it. ``MADV_DONTFORK`` keeps it out of workers forked while it is filled (they would get
  their own half-copied pages); once sealed (read-only) a forked worker shares its pages
  copy-on-write, and nothing ever writes them. Spawned workers read as they did before;
- ``"shared"`` without huge pages where neither allows them (no faster than the page cache, but
  decoded, and never evicted).

>>> r = Region(1 << 20, backing())
>>> r.view(0, 1 << 20).nbytes, r.sealed
(1048576, False)
>>> r.seal(); r.close()
"""

from __future__ import annotations

import ctypes
import mmap
import os
import weakref
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InvalidInputError, MemoryMapError

__all__: list[str] = []

THP = Path("/sys/kernel/mm/transparent_hugepage")
HUGE = 2 << 20  # columns start on a huge-page boundary
_ANON_OK = ("always", "madvise")
_SHMEM_OK = ("always", "within_size", "advise", "force")


def setting(name: str, root: Path = THP) -> str:
    """The word in brackets of a THP setting file (``"madvise"`` from ``always [madvise] never``),
    or "" where the file is missing."""
    try:
        text = (root / name).read_text()
    except OSError:
        return ""
    return text.split("[", 1)[1].split("]", 1)[0] if "[" in text else text.strip()


def _allows(name: str, ok: tuple[str, ...], root: Path) -> bool:
    own = setting(f"hugepages-2048kB/{name}", root)  # per-size setting (kernel 6.8+)
    if own and own != "inherit":
        return own in ok
    return setting(name, root) in ok


def huge_private(root: Path = THP) -> bool:
    """Whether private anonymous memory gets 2 MiB pages when asked (``MADV_HUGEPAGE``)."""
    return _allows("enabled", _ANON_OK, root)


def huge_shared(root: Path = THP) -> bool:
    """Whether shared memory (memfd, /dev/shm) gets 2 MiB pages when asked."""
    return _allows("shmem_enabled", _SHMEM_OK, root)


def backing(root: Path = THP) -> str:
    """``"shared"`` or ``"private"``: the best memory this kernel offers (see the module);
    ``WB_RAM_BACKING`` overrides it."""
    forced = os.environ.get("WB_RAM_BACKING", "")
    if forced in ("shared", "private"):
        return forced
    return "private" if huge_private(root) and not huge_shared(root) else "shared"


_libc = ctypes.CDLL(None, use_errno=True)
_libc.mmap.restype = ctypes.c_void_p
_libc.mmap.argtypes = (
    ctypes.c_void_p,
    ctypes.c_size_t,
    ctypes.c_int,
    ctypes.c_int,
    ctypes.c_int,
    ctypes.c_long,
)
_libc.munmap.argtypes = (ctypes.c_void_p, ctypes.c_size_t)
_libc.madvise.argtypes = _libc.mprotect.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
_FAILED = ctypes.c_void_p(-1).value
_unsealed: weakref.WeakSet[Region] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for r in list(_unsealed):  # MADV_DONTFORK: the child has no such mapping
        if r.backing == "private":
            r.lost = True


os.register_at_fork(after_in_child=_after_fork_in_child)


def _check(rc: int, what: str) -> None:
    if rc != 0:
        err = ctypes.get_errno()
        raise MemoryMapError(err, f"{what} of the RAM tier failed: {os.strerror(err)}")


class Region:
    """``nbytes`` of anonymous memory of ``backing`` (``"shared"`` or ``"private"``), asked for
    huge pages; filled through :meth:`view`, then :meth:`seal` ed read-only. ``lost``: True in
    a process forked from the owner before the seal, where a private region is not mapped (and
    the range is never unmapped there: it may hold the child's own memory by then)."""

    def __init__(self, nbytes: int, backing: str, *, path: str | None = None) -> None:
        self.nbytes, self.backing, self.lost, self.sealed = int(nbytes), backing, False, False
        self.fd: int | None = None
        self.size = max(1, self.nbytes)
        prot, flags, fd = mmap.PROT_READ | mmap.PROT_WRITE, mmap.MAP_SHARED, -1
        if path is not None:  # a spawned process reopening the owner's sealed memfd
            fd, prot = os.open(path, os.O_RDONLY), mmap.PROT_READ
        elif backing == "shared":
            self.fd = fd = os.memfd_create("workbench-ram-tier", os.MFD_CLOEXEC)
            os.ftruncate(fd, self.size)
        else:
            flags = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS
        try:
            addr = _libc.mmap(None, self.size, prot, flags, fd, 0)
        finally:
            if path is not None:
                os.close(fd)
        if addr in (None, _FAILED):
            err = ctypes.get_errno()
            if self.fd is not None:
                os.close(self.fd)
            raise MemoryMapError(err, f"mmap of {self.size:,} bytes for the RAM tier failed")
        self.addr: int = addr
        self.sealed = path is not None
        if backing == "private" and path is None:
            _check(_libc.madvise(addr, self.size, mmap.MADV_DONTFORK), "madvise(DONTFORK)")
            _unsealed.add(self)
        self.owner = os.getpid()
        self.huge = path is None and (huge_shared() if backing == "shared" else huge_private())
        if self.huge and _libc.madvise(addr, self.size, mmap.MADV_HUGEPAGE) != 0:
            self.huge = False  # an old kernel or a seccomp filter: 4 KiB pages
        buf = (ctypes.c_uint8 * self.size).from_address(addr)
        self._bytes = np.frombuffer(buf, np.uint8)
        if self.sealed:
            self._bytes.flags.writeable = False

    def view(self, offset: int, nbytes: int) -> np.ndarray:
        """Bytes ``[offset, offset + nbytes)`` as a uint8 array (writable until sealed)."""
        return self._bytes[offset : offset + nbytes]

    def seal(self) -> None:
        """Make the memory read-only (a write faults, as on a read-only memmap) and, if private,
        inherited by processes forked from now on."""
        if self.sealed:
            return
        _check(_libc.mprotect(self.addr, self.size, mmap.PROT_READ), "mprotect")
        if self.backing == "private":
            _check(_libc.madvise(self.addr, self.size, mmap.MADV_DOFORK), "madvise(DOFORK)")
            _unsealed.discard(self)
        self.sealed = True
        self._bytes.flags.writeable = False

    @property
    def reopen_path(self) -> str | None:
        """Where a spawned process may map this memory (a sealed memfd of a live owner)."""
        if self.fd is None or not self.sealed:
            return None
        return f"/proc/{self.owner}/fd/{self.fd}"

    def close(self) -> None:
        """Give the memory back; every view over it must be gone (reading one then faults)."""
        _unsealed.discard(self)
        self._bytes = np.empty(0, np.uint8)
        if not self.lost and self.addr:
            _libc.munmap(self.addr, self.size)
        self.addr = 0
        if self.fd is not None and os.getpid() == self.owner:
            os.close(self.fd)
        self.fd = None

    def __reduce__(self) -> Any:
        raise InvalidInputError("a Region does not pickle; pickle its reopen_path")
