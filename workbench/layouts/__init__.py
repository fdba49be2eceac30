"""Our on-disk layouts, one room each, furnished the same way::

    layouts/<name>/writer.py   Writer: validated chunks -> one shard's files (a ShardWriter)
    layouts/<name>/reader.py   open_reader(version, manifest, columns) -> a torch Dataset
    layouts/<name>/check.py    check_shard(version, shard, columns) -> problems, for verify

and, where the layout has them, optional capabilities that :func:`capability` finds (None where a
room lacks one): ``STREAMS`` (``open_dataset(url)`` reads it through a shard cache),
``dask_source`` (``as_dask``'s chunk files), ``DASK_HINT`` (what to use instead where it has no
``dask_source``) and ``storage_facts`` (what ``wb.inspect`` shows of its files).

This registry is the one place a layout name is dispatched; rooms load on first use, so
``import workbench`` never pulls h5py or pyarrow. A new layout is a copy of a room plus its name
in ``manifest.LAYOUTS``; ``tests/test_layouts.py`` then runs the shared contract on it.

>>> from workbench.layouts import room
>>> room("store").Writer.__name__
'StoreWriter'
>>> capability("store", "STREAMS"), capability("store", "storage_facts")
(True, None)
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType
from typing import Any

from ..errors import InvalidInputError
from ..format.manifest import LAYOUTS, Column, Manifest, Shard
from .base import ShardWriter

__all__: list[str] = []


def room(layout: str) -> ModuleType:
    """The module of one layout: it exports ``Writer``, ``open_reader`` and ``check_shard``."""
    if layout not in LAYOUTS:
        raise InvalidInputError(f"layout {layout!r} is unknown; choose one of {', '.join(LAYOUTS)}")
    return importlib.import_module(f".{layout}", __name__)


def capability(layout: str, name: str) -> Any:
    """Room ``layout``'s optional capability ``name``, or None where the room lacks it."""
    return getattr(room(layout), name, None)


def layouts_with(name: str) -> tuple[str, ...]:
    """The layouts whose room has capability ``name`` (loads every room: for messages)."""
    return tuple(layout for layout in LAYOUTS if capability(layout, name) is not None)


def writer_class(layout: str) -> type[ShardWriter]:
    return room(layout).Writer  # type: ignore[no-any-return]


def open_reader(version: Path, manifest: Manifest, columns: tuple[Column, ...], **kw: Any) -> Any:
    return room(manifest.layout).open_reader(version, manifest, columns, **kw)


def writer_options(layout: str, **kw: Any) -> dict[str, Any]:
    """The layout's own writer options for a conversion (row groups, HDF5 chunks, ...)."""
    return room(layout).writer_options(**kw)  # type: ignore[no-any-return]


def check_shard(
    layout: str, version_dir: Path, shard: Shard, columns: tuple[Column, ...]
) -> list[str]:
    """Format-level checks beyond size and digest (headers, HDF5 fletcher32, Parquet page CRCs)."""
    return room(layout).check_shard(version_dir, shard, columns)  # type: ignore[no-any-return]
