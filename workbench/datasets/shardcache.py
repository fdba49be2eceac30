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

from ..errors import CorruptDatasetError, InvalidInputError, RemoteError
from ..format.manifest import Manifest

__all__: list[str] = []

RETRIES = 4  # attempts per file before RemoteError
BACKOFF_S = 0.25  # first wait; doubled each retry
AHEAD = 2  # shards fetched ahead of the one a batch needs, when the plan is known


def retry(what: str, fn: Any) -> Any:
    """``fn()``, tried ``RETRIES`` times with backoff; then a RemoteError naming ``what``."""
    delay, attempt = BACKOFF_S, 1
    while True:
        try:
            return fn()
        except (OSError, ConnectionError, TimeoutError) as e:  # fsspec/aiohttp raise OSError kinds
            if isinstance(e, FileNotFoundError) or attempt == RETRIES:
                raise RemoteError(
                    f"{what}: {type(e).__name__}: {e} (after {attempt} "
                    "attempts); check the URL and that the server is up"
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
        self, fs: Any, remote: str, local: Path, manifest: Manifest, cache_bytes: int
    ) -> None:
        self.fs, self.remote, self.local, self.manifest = fs, remote.rstrip("/"), local, manifest
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
        return {k: v for k, v in self.__dict__.items() if k not in ("lock", "on_evict")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state, lock=threading.RLock(), on_evict=None)

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
        for f in self.manifest.shards[s].files:
            self._fetch(s, f)
        self._held[s] = size
        self.fetches += 1

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
                data = retry(f"{url} (shard {s})", lambda: self.fs.cat_file(url))
                digest = xxhash.xxh3_64_hexdigest(data)
                if len(data) == f.bytes and digest == f.xxh3:
                    tmp.write_bytes(data)
                    os.replace(tmp, dest)
                    return
            finally:
                tmp.unlink(missing_ok=True)
        raise CorruptDatasetError(
            f"{url} (shard {s}): {len(data):,} bytes with xxh3 {digest}, "
            f"the manifest says {f.bytes:,} bytes with xxh3 {f.xxh3}, twice; "
            "the remote copy is damaged: publish the dataset again"
        )
