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
>>> local = wb.open_dataset("demo_data/demo.store")
>>> len(ds), ds.get_batch(range(4))["label"].tolist() == local.get_batch(range(4))["label"].tolist()
(2000, True)
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import warnings
from pathlib import Path
from typing import Any

from .._threads import IdleThread
from ..errors import CorruptDatasetError, InvalidInputError, PerformanceWarning
from ..format.manifest import CURRENT_NAME, MANIFEST_NAME, Manifest
from ..layouts import capability, layouts_with
from ..layouts.store.reader import StoreDataset
from .shardcache import AHEAD, ShardCache, retry

__all__: list[str] = []

DEFAULT_CACHE_BYTES = 4 << 30
IDLE_S = 1.0  # the fetch-ahead thread ends after this long without a new shard needed


def filesystem(url: str, timeout: float) -> tuple[Any, str]:
    """The fsspec file system of ``url`` with read timeouts where its driver takes them."""
    import fsspec

    protocol = fsspec.core.split_protocol(url)[0] or "file"
    options: dict[str, Any] = {}
    if protocol in ("http", "https"):
        import aiohttp  # fsspec's HTTP driver: without a read timeout a stalled server hangs

        options["client_kwargs"] = {
            "timeout": aiohttp.ClientTimeout(total=None, sock_connect=timeout, sock_read=timeout)
        }
    return fsspec.core.url_to_fs(url, **options)  # type: ignore[no-any-return]


def reopen(url: str, timeout: float) -> Any:
    """A new file system for ``url`` (in a worker process: fsspec's cache is per process)."""
    return filesystem(url, timeout)[0]


def is_url(source: Any) -> bool:
    """``scheme://...`` (a string naming a remote or fsspec location, not a local path)."""
    return isinstance(source, str) and re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", source) is not None


def open_remote(
    url: str,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    cache_bytes: int | None = None,
    columns: Any = None,
    timeout: float = 30.0,
    **kw: Any,
) -> Any:
    """A store-layout dataset at ``url``, read through a bounded local shard cache; a connection
    or read stalled ``timeout`` seconds is retried, then raises RemoteError."""
    from ..format.schema import check_columns

    fs, root = filesystem(url, timeout)
    root = root.rstrip("/")
    name = (
        retry(f"{url}/{CURRENT_NAME}", lambda: fs.cat_file(f"{root}/{CURRENT_NAME}"))
        .decode()
        .strip()
    )
    if not name or "/" in name or name.startswith("."):
        raise CorruptDatasetError(f"{url}/{CURRENT_NAME}: garbled pointer {name!r}; publish again")
    text = retry(
        f"{url}/{name}/{MANIFEST_NAME}", lambda: fs.cat_file(f"{root}/{name}/{MANIFEST_NAME}")
    ).decode("utf-8")
    manifest = Manifest.from_json(text, where=f"{url}/{name}/{MANIFEST_NAME}")
    if not capability(manifest.layout, "STREAMS"):
        streams = layouts_with("STREAMS")
        raise InvalidInputError(
            f"{url}: a {manifest.layout}-layout dataset; streaming reads the "
            f"{' and '.join(streams)} layout: convert it with format={streams[0]!r} and "
            "publish that"
        )
    base = Path(cache_dir) if cache_dir is not None else Path.home() / ".cache" / "workbench"
    local = base / hashlib.sha1(url.encode()).hexdigest()[:16] / name
    cache = ShardCache(
        fs,
        f"{root}/{name}",
        local,
        manifest,
        DEFAULT_CACHE_BYTES if cache_bytes is None else cache_bytes,
        reopen=functools.partial(reopen, url, timeout),
    )
    cols = check_columns(manifest.columns, columns, url)
    return RemoteStoreDataset(local, manifest, cols, cache=cache, url=url, **kw)


class RemoteStoreDataset(StoreDataset):
    """A store dataset whose shards are fetched on demand into a :class:`ShardCache`."""

    kind, _sources, _fetches = "store (remote)", False, True  # shards come and go: never all open

    def __init__(
        self,
        version: Path,
        manifest: Manifest,
        cols: Any,
        *,
        cache: ShardCache,
        url: str,
        **kw: Any,
    ) -> None:
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
                f"{self.url}: the cache holds {self.cache.cache_bytes // biggest} shards but a "
                f"pass in this order needs about {lag} at once, so shards will be fetched again "
                f"and again; raise cache_bytes to {lag * biggest:,} "
                f"({(lag + AHEAD) * biggest:,} to also fetch ahead) or use a smaller window",
                PerformanceWarning,
                stacklevel=3,
            )

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
