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

from .errors import CorruptDatasetError, InvalidInputError, PerformanceWarning, RemoteError
from .layouts.store.reader import StoreDataset
from .manifest import CURRENT_NAME, MANIFEST_NAME, Manifest

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
    """Shards on local disk, at most ``cache_bytes`` of them, least recently used evicted first."""

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
        self._lock = threading.Lock()
        self.on_evict: Any = None
        self.fetches = 0
        if local.exists():  # left by an earlier reader: not counted, so not kept (one reader per folder)
            shutil.rmtree(local)
        local.mkdir(parents=True, exist_ok=True)

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k not in ("_lock", "on_evict")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state, _lock=threading.Lock(), on_evict=None)

    @property
    def bytes_held(self) -> int:
        return sum(self._held.values())

    def ensure(self, s: int) -> None:
        """Make shard ``s`` whole on local disk (fetching and verifying it if needed)."""
        with self._lock:
            if s in self._held:
                self._held.move_to_end(s)
                if s in self._ahead:
                    self._ahead.discard(s)
                    self.prefetched += 1
                return
            shard = self.manifest.shards[s]
            size = sum(f.bytes for f in shard.files)
            while self._held and self.bytes_held + size > self.cache_bytes:
                # least recently used first, but a shard fetched ahead and not used yet last
                old = next((k for k in self._held if k not in self._ahead), next(iter(self._held)))
                self._evict(old)
            for f in shard.files:
                self._fetch(s, f)
            self._held[s] = size
            self.fetches += 1

    def fetch_ahead(self, s: int, done: set[int]) -> bool:
        """Fetch shard ``s`` if it fits, evicting only shards in ``done`` (not needed again this
        pass); False if it does not fit."""
        with self._lock:
            if s in self._held:
                return True
            size = sum(f.bytes for f in self.manifest.shards[s].files)
            while self.bytes_held + size > self.cache_bytes:
                old = next((k for k in self._held if k in done), None)
                if old is None:
                    return False
                self._evict(old)
            for f in self.manifest.shards[s].files:
                self._fetch(s, f)
            self._held[s] = size
            self._ahead.add(s)
            self.fetches += 1
            return True

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

    from .schema import check_columns

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

    kind = "store (remote)"

    def __init__(self, version: Path, manifest: Manifest, cols: Any, *, cache: ShardCache,
                 url: str, **kw: Any) -> None:
        super().__init__(version, manifest, cols, **kw)
        self.cache, self.url, self.where = cache, url, url
        cache.on_evict = self._forget

    def _forget(self, s: int) -> None:
        self._open.pop(s, None)

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in super().__getstate__().items() if k not in ("_ahead", "_wake")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.cache.on_evict = self._forget

    def plan_reads(self, shards: list[int] | None, lag: int = 2) -> None:
        """The order the next pass will need shards in (the loader calls this when it knows it),
        and ``lag``: a shard is not needed again once the pass opens the one ``lag`` places after
        it. A background thread fetches the next shards while the batch reads the current one,
        evicting only shards the pass is done with."""
        self._plan_order, self._lag = (list(shards) if shards else []), max(1, int(lag))
        biggest = self.cache.biggest
        if shards and self._lag * biggest > self.cache.cache_bytes:
            warnings.warn(
                f"{self.url}: the cache holds {self.cache.cache_bytes // biggest} shards but a pass in "
                f"this order needs about {self._lag} at once, so shards will be fetched again and "
                f"again; raise cache_bytes to {self._lag * biggest:,} or use a smaller window",
                PerformanceWarning, stacklevel=3)
        self._plan_pos = {s: i for i, s in enumerate(self._plan_order)}
        self._needed_at = 0

    def _wake_fetcher(self) -> None:
        thread = getattr(self, "_ahead", None)
        if thread is None or not thread.is_alive():
            self._wake = threading.Event()
            self._ahead = threading.Thread(target=self._fetch_ahead, name="workbench-fetch-ahead",
                                           daemon=True)
            self._ahead.start()
        self._wake.set()

    def _fetch_ahead(self) -> None:
        done = -1
        while self._wake.wait(IDLE_S):  # idle for a while: the pass is over, the thread ends
            self._wake.clear()
            order, at = self._plan_order, self._needed_at
            behind = set(order[:max(0, at - self._lag + 1)])
            for i in range(max(at, done) + 1, min(len(order), at + 1 + AHEAD)):
                try:
                    if not self.cache.fetch_ahead(order[i], behind):
                        break
                except Exception:  # the batch that needs it fetches it again and raises the error
                    break
                done = i

    def _open_shard(self, s: int) -> Any:
        self.cache.ensure(s)
        pos = getattr(self, "_plan_pos", {}).get(s)
        if pos is not None:
            self._needed_at = pos
            self._wake_fetcher()
        return super()._open_shard(s)

    def describe_source(self) -> str:
        return f"{self.url} (cached in {self._version}, at most {self.cache.cache_bytes:,} bytes)"
