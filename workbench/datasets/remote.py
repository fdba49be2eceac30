"""Datasets read past the local disk: ``wb.open_dataset(url, cache_dir=..., cache_bytes=...)``
for any fsspec URL (``http(s)://``, ``file://``, ``memory://``; ``s3://`` and others with their
fsspec driver installed).

The manifest is read remotely; each shard is fetched when a batch first touches it into a local
cache that never holds more than ``cache_bytes`` on disk (least recently used shards go first),
checked against the manifest's xxh3 digests on arrival, written under a temporary name and renamed
into place, so a half-fetched shard is never read. A failed fetch is retried with backoff and then
raises :class:`~workbench.errors.RemoteError` naming the URL and shard; a digest mismatch is
fetched once more, then raises :class:`~workbench.errors.CorruptDatasetError`.

>>> ds = wb.open_dataset("file://" + os.path.abspath("demo_data/demo.store"),
...                      cache_dir="cache", cache_bytes=1 << 20)
>>> len(ds), ds.get_batch(range(4))["label"].tolist() == wb.open_dataset("demo_data/demo.store").get_batch(range(4))["label"].tolist()
(2000, True)
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import shutil
import threading
import time
import warnings
from collections import OrderedDict
from pathlib import Path
from typing import Any

import xxhash

from .._threads import IdleThread
from ..errors import CorruptDatasetError, InvalidInputError, PerformanceWarning, RemoteError
from ..format.manifest import CURRENT_NAME, MANIFEST_NAME, Manifest
from ..layouts.store.reader import StoreDataset

__all__: list[str] = []

RETRIES = 4            # attempts per file before RemoteError
BACKOFF_S = 0.25       # first wait; doubled each retry
DEFAULT_CACHE_BYTES = 4 << 30
AHEAD = 2              # shards fetched ahead of the one a batch needs, when the plan is known
IDLE_S = 1.0           # the fetch-ahead thread ends after this long without a new shard needed


def is_url(source: Any) -> bool:
    """``scheme://...`` (a string naming a remote or fsspec location, not a local path)."""
    return isinstance(source, str) and re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", source) is not None


def _retry(what: str, fn: Any) -> Any:
    delay, attempt = BACKOFF_S, 1
    while True:
        try:
            return fn()
        except (OSError, ConnectionError, TimeoutError) as e:  # fsspec/aiohttp raise OSError kinds
            if isinstance(e, FileNotFoundError) or attempt == RETRIES:
                raise RemoteError(f"{what}: {type(e).__name__}: {e} (after {attempt} "
                                      "attempts); check the URL and that the server is up") from None
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

    def __init__(self, fs: Any, remote: str, local: Path, manifest: Manifest, cache_bytes: int) -> None:
        self.fs, self.remote, self.local, self.manifest = fs, remote.rstrip("/"), local, manifest
        self.cache_bytes = int(cache_bytes)
        self.biggest = max((sum(f.bytes for f in s.files) for s in manifest.shards), default=0)
        if self.biggest > self.cache_bytes:
            raise InvalidInputError(f"cache_bytes={self.cache_bytes:,} is smaller than one shard "
                                    f"({self.biggest:,} bytes); raise cache_bytes to at least 2 shards")
        self._held: OrderedDict[int, int] = OrderedDict()  # shard -> bytes, oldest first
        self._ahead: set[int] = set()  # fetched by the prefetcher, not yet used
        self.prefetched = 0  # shards the prefetcher had ready before a batch needed them
        self.lock = threading.RLock()  # shards come and go under it; a reader maps one under it
        self.on_evict: Any = None
        self.fetches = 0
        self.plan(None, 1)
        if local.exists():  # left by an earlier reader: not counted, so not kept (one reader per folder)
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
        return done + [k for k in reversed(rest) if self._pos[k] > self.at] + \
            [k for k in rest if self._pos[k] <= self.at]

    def ahead(self) -> list[int]:
        """The shards the plan needs next, after the furthest one opened."""
        with self.lock:
            return self.order[self.at + 1:self.at + 1 + AHEAD]

    def ensure(self, s: int) -> bool:
        """Make shard ``s`` whole on local disk (fetched and verified if needed); True if planned."""
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
                data = _retry(f"{url} (shard {s})", lambda: self.fs.cat_file(url))
                digest = xxhash.xxh3_64_hexdigest(data)
                if len(data) == f.bytes and digest == f.xxh3:
                    tmp.write_bytes(data)
                    os.replace(tmp, dest)
                    return
            finally:
                tmp.unlink(missing_ok=True)
        raise CorruptDatasetError(f"{url} (shard {s}): {len(data):,} bytes with xxh3 {digest}, "
                                  f"the manifest says {f.bytes:,} bytes with xxh3 {f.xxh3}, twice; "
                                  "the remote copy is damaged: publish the dataset again")


def open_remote(url: str, *, cache_dir: str | os.PathLike[str] | None = None,
                cache_bytes: int | None = None, columns: Any = None, **kw: Any) -> Any:
    """A store-layout dataset at ``url``, read through a bounded local shard cache."""
    import fsspec

    from ..format.schema import check_columns

    fs, root = fsspec.core.url_to_fs(url)
    root = root.rstrip("/")
    name = _retry(f"{url}/{CURRENT_NAME}", lambda: fs.cat_file(f"{root}/{CURRENT_NAME}")).decode().strip()
    if not name or "/" in name or name.startswith("."):
        raise CorruptDatasetError(f"{url}/{CURRENT_NAME}: garbled pointer {name!r}; publish again")
    text = _retry(f"{url}/{name}/{MANIFEST_NAME}",
                  lambda: fs.cat_file(f"{root}/{name}/{MANIFEST_NAME}")).decode("utf-8")
    manifest = Manifest.from_json(text, where=f"{url}/{name}/{MANIFEST_NAME}")
    if manifest.layout != "store":
        raise InvalidInputError(f"{url}: a {manifest.layout}-layout dataset; streaming reads the "
                                "store layout: convert it with format='store' and publish that")
    base = Path(cache_dir) if cache_dir is not None else Path.home() / ".cache" / "workbench"
    local = base / hashlib.sha1(url.encode()).hexdigest()[:16] / name
    cache = ShardCache(fs, f"{root}/{name}", local, manifest,
                       DEFAULT_CACHE_BYTES if cache_bytes is None else cache_bytes)
    cols = check_columns(manifest.columns, columns, url)
    return RemoteStoreDataset(local, manifest, cols, cache=cache, url=url, **kw)


class RemoteStoreDataset(StoreDataset):
    """A store dataset whose shards are fetched on demand into a :class:`ShardCache`."""

    kind, _sources, _fetches = "store (remote)", False, True  # shards come and go: never all open

    def __init__(self, version: Path, manifest: Manifest, cols: Any, *, cache: ShardCache,
                 url: str, **kw: Any) -> None:
        super().__init__(version, manifest, cols, **kw)
        self.cache, self.url, self.where = cache, url, url
        cache.on_evict = self._forget

    def _forget(self, s: int) -> None:
        self._open.pop(s, None)

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in super().__getstate__().items() if k != "_fetcher"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.cache.on_evict = self._forget

    def plan_reads(self, shards: list[int] | None, lag: int = 2) -> None:
        """The order the next pass will need shards in (the loader calls this when it knows it),
        and ``lag``: a shard is not needed again once the pass opens the one ``lag`` places after
        it. A background thread fetches the next shards while the batch reads the current one,
        never evicting what the pass still needs (see :class:`ShardCache`)."""
        lag, biggest = max(1, int(lag)), self.cache.biggest
        self.cache.plan(shards, lag)
        if shards and lag * biggest > self.cache.cache_bytes:
            warnings.warn(
                f"{self.url}: the cache holds {self.cache.cache_bytes // biggest} shards but a pass in "
                f"this order needs about {lag} at once, so shards will be fetched again and "
                f"again; raise cache_bytes to {lag * biggest:,} ({(lag + AHEAD) * biggest:,} to "
                "also fetch ahead) or use a smaller window", PerformanceWarning, stacklevel=3)

    def _wake_fetcher(self) -> None:
        if getattr(self, "_fetcher", None) is None:  # idle for IDLE_S: the pass is over, it ends
            self._fetcher = IdleThread("workbench-fetch-ahead", keep=1, idle_s=IDLE_S)
        self._fetcher.submit(self._fetch_next)  # one waiting at most: wakes while it runs add one

    def _fetch_next(self) -> None:
        for s in self.cache.ahead():
            try:
                if not self.cache.fetch_ahead(s):
                    break
            except Exception:  # the batch that needs it fetches it again and raises the error
                break

    def _shard(self, s: int) -> Any:
        got = self._open.get(s)
        if got is None:  # fetched and mapped under the cache's lock: no thread evicts it between
            with self.cache.lock:
                got = self._open.get(s)
                if got is None:
                    got = self._open[s] = self._open_shard(s)
        return got

    def _open_shard(self, s: int) -> Any:
        if self.cache.ensure(s):
            self._wake_fetcher()
        return super()._open_shard(s)

    def describe_source(self) -> str:
        return f"{self.url} (cached in {self._version}, at most {self.cache.cache_bytes:,} bytes)"
