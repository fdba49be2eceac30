"""What ``wb.inspect`` reads of Zarr storage, from metadata and store listings only: the chunk grid
(the inner chunks of a sharded array are its read unit, the shards its stored objects), the codecs
(filters, serializer, compressors), bytes stored against logical bytes, dimension names; for a
group each of its arrays; and the Zarr arrays under a Dask array built with ``da.from_zarr``.

>>> import zarr
>>> z = zarr.create_array("a.zarr", shape=(1000, 4), chunks=(100, 4), dtype="float32")
>>> f = zarr_facts(z, "x")
>>> f.unit, f.unit_rows, f.storage["chunks"], f.storage["compressors"]
('zarr chunk', 100.0, (100, 4), 'zstd(level=0, checksum=False)')
"""

from __future__ import annotations

import os
import re
from typing import Any

import numpy as np

from .facts import ArrayFacts, regular_chunks
from .sources import Described

__all__: list[str] = []

MAX_FILES = 1024  # a local array's chunk files checked for page-cache residency, at most


def codec_name(c: Any) -> str:
    """``ZstdCodec(level=0, checksum=False)`` -> ``zstd(level=0, checksum=False)``; a format 2
    numcodecs ``Zstd(level=0)`` -> ``zstd(level=0)``."""
    text = re.sub(r"<\w+\.(\w+): [^>]*>", r"\1", repr(c))  # <Endian.little: 'little'>
    head, _, rest = text.partition("(")
    head = head.removesuffix("Codec").lower()
    return f"{head}({rest}" if rest else head


def codecs(a: Any) -> dict[str, str | None]:
    """The array's filters, serializer and compressors, each as text (None where none)."""
    serializer = getattr(a, "serializer", None)
    return {
        "filters": ", ".join(codec_name(c) for c in a.filters) or None,
        "serializer": codec_name(serializer) if serializer is not None else None,
        "compressors": ", ".join(codec_name(c) for c in a.compressors) or None,
    }


def _stored(a: Any) -> int | None:
    try:
        return int(a.nbytes_stored())
    except Exception:  # a store that cannot list (plain HTTP without an index page)
        return None


def _files(a: Any) -> tuple[str, ...]:
    from ..inputs.zarrstores import ref_of

    ref = ref_of(a)
    if ref.store == "zip":
        return (ref.location,)
    if ref.store != "local":
        return ()
    found: list[str] = []
    for root, _, names in os.walk(os.path.join(ref.location, a.path)):
        found += [os.path.join(root, n) for n in names]
        if len(found) > MAX_FILES:
            return ()
    return tuple(sorted(found))


def zarr_facts(a: Any, name: str) -> ArrayFacts:
    """One zarr Array: its chunk grid, shards, codecs and bytes stored."""
    from ..inputs.zarrs import dimension_names
    from ..inputs.zarrstores import ref_of

    shape, dt = tuple(int(s) for s in a.shape), np.dtype(a.dtype)
    row_bytes = int(dt.itemsize * int(np.prod(shape[1:], dtype=np.int64)))
    chunks = tuple(int(c) for c in a.chunks)
    chunk_rows = min(chunks[0], max(1, shape[0])) if shape else 1
    stored = _stored(a)
    said = codecs(a)
    storage: dict[str, Any] = {
        "zarr format": int(a.metadata.zarr_format),
        "chunks": chunks,
        "shards": getattr(a, "shards", None),
        **said,
        "compressed": bool(said["compressors"] or said["filters"]),
        "bytes stored": stored,
        "storage ratio": round(a.nbytes / stored, 2) if stored else None,
        "dimension names": dimension_names(a),
        "store": f"{type(a.store).__name__} {ref_of(a)}",
    }
    return ArrayFacts(
        name,
        shape,
        str(dt.newbyteorder("=")),
        disk_bytes=stored,
        unit="zarr chunk",
        unit_rows=float(chunk_rows),
        unit_bytes=chunk_rows * row_bytes,  # a row read decodes every chunk across its width
        row_chunks=regular_chunks(shape[0], chunks[0]) if shape else (),
        col_chunks=regular_chunks(shape[1], chunks[1]) if len(shape) > 1 else (),
        storage=storage,
        files=_files(a),
    )


def arrays_of(node: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """A group's arrays, nested groups' ones by their path (``"train/x"``); an array: itself."""
    if type(node).__name__ != "Group":
        return [(prefix or node.basename or "x", node)]
    out = [(f"{prefix}{k}", a) for k, a in sorted(node.arrays(), key=lambda kv: kv[0])]
    for k, g in sorted(node.groups(), key=lambda kv: kv[0]):
        out += arrays_of(g, f"{prefix}{k}/")
    return out


def zarr_input(source: Any, key: str | None) -> Described:
    """A Zarr folder, zip store, URL or zarr Array/Group; ``key`` names a node inside it."""
    from ..inputs.zarrstores import is_group, locate

    ref, node = locate(source)
    if key:
        node = node[key]
    kind = "group" if is_group(node) else "array"
    facts = [zarr_facts(a, name) for name, a in arrays_of(node) if a.ndim > 0]
    fmt = node.metadata.zarr_format
    where = str(ref) + (f":{key}" if key else "")
    what = f"{len(facts)} arrays" if kind == "group" else f"{node.shape} {node.dtype}"
    return where, "zarr", f"Zarr v{fmt} {kind}, {what}", facts, {}


def zarr_under(arr: Any) -> list[Any]:
    """The zarr Arrays a Dask array reads (``da.from_zarr`` keeps each as its graph's
    ``original-`` layer)."""
    from ..inputs.zarrs import is_zarr

    found = []
    for name, layer in getattr(arr.dask, "layers", {}).items():
        if name.startswith("original-") and name in layer:
            value = layer[name]
            if is_zarr(value):
                found.append(value)
    return found
