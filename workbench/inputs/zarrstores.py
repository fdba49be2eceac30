"""Where a Zarr node lives (:class:`ZarrRef`: a folder, a zip store, an fsspec URL or an
in-memory store), how a path, a URL or a zarr object is found there (:func:`locate`), and its
arrays opened once per process (:class:`Reopened`): after fork an fsspec store's event loop and a
zip file's handle are the parent's, so each process that reads opens the store itself.

>>> import zarr
>>> zarr.open_group("g.zarr", mode="w").create_array("x", shape=(100, 3), dtype="float32")
<Array file://g.zarr/x shape=(100, 3) dtype=float32>
>>> ref, node = locate("g.zarr")
>>> ref.store, type(node).__name__, Reopened(ref).array("x").shape
('local', 'Group', (100, 3))
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidInputError, SourceNotFoundError

__all__: list[str] = []


@dataclass(frozen=True)
class ZarrRef:
    """Where a Zarr node lives, in a form any process can open again.

    ``store``: ``"local"`` (a folder), ``"zip"`` (a zip file), ``"url"`` (fsspec) or
    ``"object"`` (a store with no location, as a ``MemoryStore``: ``obj``, used as it is)."""

    store: str
    location: str
    path: str = ""  # the node inside the store
    options: tuple[tuple[str, Any], ...] = ()  # a URL's fsspec storage options
    obj: Any = None

    def __str__(self) -> str:
        inside = f" ({self.path})" if self.path else ""
        return f"{self.location or type(self.obj).__name__}{inside}"

    def open(self, path: str | None = None) -> Any:
        """The node at ``path`` (default: this ref's own), read-only."""
        import zarr

        path = self.path if path is None else path
        try:
            return zarr.open(store=self._store(), path=path, mode="r")
        except (FileNotFoundError, KeyError, ValueError) as e:
            raise SourceNotFoundError(
                f"{self}: no Zarr array or group at {path or 'the top'!r} ({e}); "
                "check the path, or pass the array or group you opened with zarr"
            ) from None
        except Exception as e:  # zarr's own NodeNotFoundError, a corrupt zarr.json, a bad zip
            if type(e).__name__.endswith("NotFoundError"):
                raise SourceNotFoundError(
                    f"{self}: no Zarr array or group at {path or 'the top'!r}; check the path"
                ) from None
            raise InvalidInputError(f"{self}: not a readable Zarr store ({e})") from None

    def _store(self) -> Any:
        import zarr

        if self.store == "local":
            return zarr.storage.LocalStore(self.location, read_only=True)
        if self.store == "zip":
            return zarr.storage.ZipStore(self.location, mode="r")
        if self.store == "url":
            return zarr.storage.FsspecStore.from_url(
                self.location, storage_options=dict(self.options) or None, read_only=True
            )
        return self.obj


def locate(source: Any) -> tuple[ZarrRef, Any]:
    """``(ref, node)`` of a path, a URL or a zarr Array/Group (the node as given: not reopened)."""
    if not isinstance(source, (str, os.PathLike)):
        ref = ref_of(source)
        return ref, source
    path = os.fspath(source)
    if "://" in path:
        ref = ZarrRef("url", path.rstrip("/"))
    elif os.path.isdir(path):
        ref = ZarrRef("local", path)
    elif os.path.isfile(path):
        ref = ZarrRef("zip", path)
    else:
        raise SourceNotFoundError(f"{path}: no such file or folder; check the path")
    return ref, ref.open()


def ref_of(node: Any) -> ZarrRef:
    """The :class:`ZarrRef` of a zarr Array or Group, from its store."""
    store, path = node.store, node.path
    kind = type(store).__name__
    if kind == "LocalStore":
        return ZarrRef("local", str(store.root), path)
    if kind == "ZipStore":
        return ZarrRef("zip", str(store.path), path)
    if kind == "FsspecStore":
        proto = store.fs.protocol if isinstance(store.fs.protocol, str) else store.fs.protocol[0]
        url = store.path if "://" in store.path else f"{proto}://{store.path}"
        opts = tuple(
            sorted((k, v) for k, v in store.fs.storage_options.items() if k != "asynchronous")
        )
        return ZarrRef("url", url, path, opts)
    return ZarrRef("object", "", path, obj=store)


class Reopened:
    """A ref's arrays, opened once per process: the node given is used in the process that gave
    it; after fork or unpickling each array is opened again from the ref."""

    def __init__(self, ref: ZarrRef, node: Any = None) -> None:
        self.ref = ref
        self._pid = os.getpid() if node is not None else None
        self._arrays: dict[str, Any] = {}
        self._given = node

    def __getstate__(self) -> dict[str, Any]:
        return {"ref": self.ref, "_pid": None, "_arrays": {}, "_given": None}

    def node(self) -> Any:
        """The ref's own node (the one given, in the process that gave it)."""
        self._renew()
        return self._given if self._given is not None else self.ref.open()

    def _renew(self) -> None:
        if self._pid != os.getpid():  # forked or unpickled: the parent's stores are not ours
            self._arrays, self._given, self._pid = {}, None, os.getpid()

    def array(self, path: str) -> Any:
        """The array at ``path`` (relative to the store's top)."""
        self._renew()
        got = self._arrays.get(path)
        if got is None:
            if self._given is not None and self._given.path == path:
                got = self._given
            elif self._given is not None and is_group(self._given):
                got = self._given[_relative(self._given.path, path)]
            else:
                got = self.ref.open(path)
            self._arrays[path] = got
        return got


def is_group(node: Any) -> bool:
    return type(node).__name__ == "Group"


def _relative(group: str, path: str) -> str:
    return path[len(group) :].lstrip("/") if group else path
