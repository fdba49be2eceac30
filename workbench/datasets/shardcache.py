"""The verified shard cache of a URL dataset: each shard fetched (with retries) on first use,
checked against the manifest's xxh3 digests, renamed into place whole, and evicted in the order
the pass's plan says it is done with them, within ``cache_bytes`` on local disk.
"""

from __future__ import annotations

import os
import secrets
import shutil
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

import xxhash

from ..errors import CorruptDatasetError, DiskFullError, InvalidInputError, RemoteError
from ..format.files import free_bytes, no_space, sized
from ..format.manifest import Manifest

__all__: list[str] = []

RETRIES = 4  # attempts per file before RemoteError
BACKOFF_S = 0.25  # first wait; doubled each retry
AHEAD = 2  # shards fetched ahead of the one a batch needs, when the plan is known
CHUNK = 1 << 20  # bytes of a shard in memory while it streams to disk


def _transient() -> tuple[type[BaseException], ...]:
    """What a fetch may fail with and succeed on a retry: OS and connection errors, timeouts,
    and aiohttp's own errors (a server that drops the connection raises one that is no OSError)."""
    try:
        from aiohttp import ClientError
    except ImportError:  # pragma: no cover - aiohttp comes with fsspec's http extra
        return (OSError, TimeoutError)
    return (OSError, TimeoutError, ClientError)


def _causes(e: BaseException) -> list[BaseException]:
    """``e`` and the errors it was raised from, outermost first."""
    out: list[BaseException] = []
    while e is not None and e not in out:
        out.append(e)
        e = e.__cause__ or e.__context__  # type: ignore[assignment]
    return out


def retry(what: str, fn: Any) -> Any:
    """``fn()``, tried ``RETRIES`` times with backoff (a timeout twice: each already waited the
    whole timeout); then a RemoteError naming ``what``."""
    delay, attempt = BACKOFF_S, 1
    while True:
        try:
            return fn()
        except _transient() as e:
            causes = _causes(e)  # fsspec's HTTP driver reports a failed size query as not found
            stalled = any(isinstance(c, TimeoutError) for c in causes)
            missing = all(isinstance(c, FileNotFoundError) for c in causes)  # a real 404
            if missing or attempt == (2 if stalled else RETRIES):
                why = "the server stopped answering" if stalled else f"{type(e).__name__}: {e}"
                raise RemoteError(
                    f"{what}: {why} (after {attempt} attempts); check the URL and that the "
                    "server is up"
                ) from None
        time.sleep(delay)
        delay, attempt = delay * 2, attempt + 1


class ShardCache:
    """Shards on local disk, at most ``cache_bytes`` of them.

    Without a plan, least recently used go first. With one (:meth:`plan`: the order a pass needs
    shards in and its ``lag``), a shard is *done* once a shard ``lag`` plan places after it has been
    opened; eviction drops done shards first, then those needed furthest ahead, and only then one
    still needed (never, while ``cache_bytes`` holds ``lag`` shards). Fetching ahead evicts only
    done shards or ones needed after the one it fetches, and only while the shards still owed to
    the pass keep their room: ``lag`` shards never refetch, whatever the threads' timing, and
    ``AHEAD`` more let the next ones arrive before a batch needs them."""

    def __init__(
        self,
        fs: Any,
        remote: str,
        local: Path,
        manifest: Manifest,
        cache_bytes: int,
        reopen: Any = None,
    ) -> None:
        self.remote, self.local, self.manifest = remote.rstrip("/"), local, manifest
        # fsspec's HTTP file system runs an event loop that a forked worker cannot use: each
        # process makes its own with ``reopen()``
        self._fs, self._fs_pid, self.reopen = fs, os.getpid(), reopen
        self.cache_bytes = int(cache_bytes)
        self.biggest = max((sum(f.bytes for f in s.files) for s in manifest.shards), default=0)
        if self.biggest > self.cache_bytes:
            raise InvalidInputError(
                f"cache_bytes={self.cache_bytes:,} is smaller than one shard "
                f"({self.biggest:,} bytes); raise cache_bytes to at least 2 shards"
            )
        self._held: OrderedDict[int, int] = OrderedDict()  # shard -> bytes, oldest first
        self._ahead: set[int] = set()  # fetched by the prefetcher, not yet used
        self.prefetched = 0  # shards the prefetcher had ready before a batch needed them
        self.lock = threading.RLock()  # shards come and go under it; a reader maps one under it
        self.on_evict: Any = None
        self.fetches = 0
        self.plan(None, 1)
        if local.exists():  # left by an earlier reader: not counted, so not kept (one a folder)
            shutil.rmtree(local)
        local.mkdir(parents=True, exist_ok=True)

    def __getstate__(self) -> dict[str, Any]:
        drop = ("lock", "on_evict") + (("_fs",) if self.reopen is not None else ())
        return {k: v for k, v in self.__dict__.items() if k not in drop}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state, lock=threading.RLock(), on_evict=None)
        if "_fs" not in state:
            self._fs_pid = -1

    @property
    def fs(self) -> Any:
        """This process's file system for the remote (made again after a fork or unpickling)."""
        if self._fs_pid != os.getpid() and self.reopen is not None:
            self._fs, self._fs_pid = self.reopen(), os.getpid()
        return self._fs

    @property
    def bytes_held(self) -> int:
        return sum(self._held.values())

    def plan(self, order: list[int] | None, lag: int) -> None:
        """The next pass opens shards in ``order``; ``at`` is the furthest plan position opened."""
        with self.lock:
            self.order, self.lag, self.at = list(order or []), max(1, int(lag)), -1
            self._pos = {s: i for i, s in enumerate(self.order)}

    def _size(self, s: int) -> int:
        return sum(f.bytes for f in self.manifest.shards[s].files)

    def _done(self, s: int) -> bool:  # not needed again this pass (or not in its plan at all)
        return self._pos.get(s, -1 << 62) <= self.at - self.lag

    def _victims(self) -> list[int]:
        """Held shards in eviction order: done (or unplanned) ones, least recently used first;
        then those needed later than any opened, furthest first; then still needed ones."""
        if not self._pos:
            return sorted(self._held, key=lambda k: k in self._ahead)  # stable: LRU, ahead last
        done = [k for k in self._held if self._done(k)]
        rest = sorted((k for k in self._held if not self._done(k)), key=self._pos.__getitem__)
        return (
            done
            + [k for k in reversed(rest) if self._pos[k] > self.at]
            + [k for k in rest if self._pos[k] <= self.at]
        )

    def ahead(self) -> list[int]:
        """The shards the plan needs next, after the furthest one opened."""
        with self.lock:
            return self.order[self.at + 1 : self.at + 1 + AHEAD]

    def ensure(self, s: int) -> bool:
        """Make shard ``s`` whole on local disk (fetched and verified if needed); True if
        planned."""
        with self.lock:
            self.at = max(self.at, self._pos.get(s, -1))  # never backwards within a pass
            if s in self._held:
                self._held.move_to_end(s)
                if s in self._ahead:
                    self._ahead.discard(s)
                    self.prefetched += 1
            else:
                size = self._size(s)
                for old in self._victims():
                    if self.bytes_held + size <= self.cache_bytes:
                        break
                    self._evict(old)
                self._install(s, size)
            return s in self._pos

    def fetch_ahead(self, s: int) -> bool:
        """Fetch planned shard ``s`` if it fits without taking room from shards the pass needs
        before it; False if it does not (then nothing is evicted)."""
        with self.lock:
            pos = self._pos.get(s)
            if s in self._held or pos is None or pos <= self.at - self.lag:
                return True
            lo, size = max(0, self.at - self.lag + 1), self._size(s)
            owed = sum(self._size(k) for k in self.order[lo:pos] if k not in self._held)
            spare = [k for k in self._victims() if self._done(k) or self._pos[k] > pos]
            if self.bytes_held - sum(self._held[k] for k in spare) + owed + size > self.cache_bytes:
                return False
            for old in spare:
                if self.bytes_held + size <= self.cache_bytes:
                    break
                self._evict(old)
            self._install(s, size)
            self._ahead.add(s)
            return True

    def _install(self, s: int, size: int) -> None:
        """Fetch shard ``s``'s files; on a full disk, evict the done shards and try once more,
        else a DiskFullError. A shard is whole or absent: no file of a failed one stays."""
        try:
            self._fetch_all(s)
        except _NoRoom:
            freed = [k for k in self._victims() if self._done(k) and k != s]
            for k in freed:
                self._evict(k)
            try:
                if not freed:
                    raise
                self._fetch_all(s)
            except _NoRoom as e:
                free = free_bytes(self.local)
                raise DiskFullError(
                    f"{self.local}: the disk holding the shard cache is full: shard {s} of "
                    f"{self.remote} needs {sized(size)} and {sized(free)} are free, with "
                    f"{len(self._held)} shards ({sized(self.bytes_held)}) held after evicting "
                    f"{len(freed)} done ones; "
                    "free space there, pass a cache_bytes= the disk can hold, or a cache_dir= "
                    "on a bigger disk"
                ) from e.__cause__
        self._held[s] = size
        self.fetches += 1

    def _fetch_all(self, s: int) -> None:
        files = self.manifest.shards[s].files
        try:
            for f in files:
                try:
                    self._fetch(s, f)
                except OSError as e:  # the folder or the rename: no room for an entry
                    if no_space(e):
                        raise _NoRoom(str(e)) from e
                    raise
        except BaseException:  # a shard is whole or absent: drop the files that did arrive
            for f in files:
                (self.local / f.path).unlink(missing_ok=True)
            raise

    def _evict(self, s: int) -> None:
        self._ahead.discard(s)
        self._held.pop(s)
        if self.on_evict is not None:
            self.on_evict(s)  # the reader drops its maps first
        for f in self.manifest.shards[s].files:
            (self.local / f.path).unlink(missing_ok=True)

    def _fetch(self, s: int, f: Any) -> None:
        url, dest = f"{self.remote}/{f.path}", self.local / f.path
        dest.parent.mkdir(parents=True, exist_ok=True)
        for attempt in (1, 2):
            tmp = dest.with_name(f".{dest.name}.{secrets.token_hex(4)}.part")
            try:
                size, digest = retry(f"{url} (shard {s})", lambda: self._stream(url, tmp))
                if size == f.bytes and digest == f.xxh3:
                    os.replace(tmp, dest)
                    return
            finally:
                tmp.unlink(missing_ok=True)
        raise CorruptDatasetError(
            f"{url} (shard {s}): {size:,} bytes with xxh3 {digest}, "
            f"the manifest says {f.bytes:,} bytes with xxh3 {f.xxh3}, twice; "
            "the remote copy is damaged: publish the dataset again"
        )

    def _stream(self, url: str, tmp: Path) -> tuple[int, str]:
        """Copy ``url`` to ``tmp`` through one ``CHUNK`` buffer, hashing as it goes: memory
        stays bounded however big a shard is. (size, hex xxh3-64)."""
        h, size = xxhash.xxh3_64(), 0
        try:
            with self.fs.open(url, "rb", block_size=0) as src, open(tmp, "wb") as out:
                while chunk := src.read(CHUNK):
                    h.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
        except OSError as e:  # our disk, not the server: not retried (``_install`` evicts)
            if no_space(e):
                raise _NoRoom(f"{tmp}: {e}") from e
            raise
        return size, h.hexdigest()


class _NoRoom(Exception):
    """The cache's disk is full: no OSError, so ``retry`` lets it through at once."""
