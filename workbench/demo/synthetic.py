"""The demo's values, generated in fixed-size seeded blocks and cut into chunks of any size, so
they depend only on the arguments that shape the data, never on ``chunk_rows``.

>>> [len(c["label"]) for c in generate(10_000, 4096, 0, 16, 4, 1000, 8)]
[4096, 4096, 1808]
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from ..format.chunks import row_ranges

__all__: list[str] = []

# Rows per independently seeded generator block: what keeps values independent of chunk_rows.
_BLOCK_ROWS = 4096


@dataclass(frozen=True)
class _Params:
    """Per-seed constants shared by every block: class centroids and per-column scale/offset."""

    classes: int
    informative: int
    centroids: np.ndarray  # (classes, informative) float32
    scale: np.ndarray  # (features,) float32
    offset: np.ndarray  # (features,) float32

    @classmethod
    def make(cls, seed: int, features: int, classes: int) -> _Params:
        rng = np.random.default_rng([seed, 0])
        informative = min(features, max(2, features // 4))
        centroids = rng.normal(0.0, 1.5, (classes, informative)).astype(np.float32)
        scale = (10.0 ** rng.uniform(-2.0, 3.0, features)).astype(np.float32)
        offset = (rng.normal(0.0, 2.0, features) * scale).astype(np.float32)
        return cls(classes, informative, centroids, scale, offset)


def _block(p: _Params, seed: int, b: int, n: int, dim: int, nnz: int) -> dict[str, np.ndarray]:
    """Rows of generator block ``b`` (``n`` rows): the same values whatever the chunking."""
    rng = np.random.default_rng([seed, 1, b])
    k = len(p.scale)
    y = rng.integers(0, p.classes, n, dtype=np.int64)
    x = rng.standard_normal((n, k), dtype=np.float32)
    x[:, : p.informative] += p.centroids[y]
    if k > p.informative:  # a redundant column correlated with f0, as real tables have
        x[:, p.informative] = 0.7 * x[:, 0] + 0.7 * x[:, p.informative]
    x *= p.scale
    x += p.offset

    counts = rng.poisson(nnz, n)
    row = np.repeat(np.arange(n, dtype=np.int64), counts)
    total = len(row)
    width = max(1, dim // p.classes)
    topical = ((y * dim) // p.classes)[row] + rng.integers(0, width, total, dtype=np.int64)
    background = (dim * rng.random(total) ** 3).astype(np.int64)  # power law: low ids common
    tok = np.minimum(np.where(rng.random(total) < 0.6, topical, background), dim - 1)
    keys = np.sort(row * dim + tok)  # sorts within each row, rows stay in order
    keep = np.ones(len(keys), dtype=bool)
    keep[1:] = keys[1:] != keys[:-1]
    keys = keys[keep]  # drop repeats
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(keys // dim, minlength=n), out=indptr[1:])
    return {"features": x, "label": y, "indptr": indptr, "indices": (keys % dim).astype(np.int32)}


def generate(
    rows: int, chunk_rows: int, seed: int, features: int, classes: int, dim: int, nnz: int
) -> Iterator[dict[str, np.ndarray]]:
    """Yield rows ``[start, start + chunk_rows)`` in order, cut from fixed-size generator blocks."""
    p = _Params.make(seed, features, classes)
    cached: tuple[int, dict[str, np.ndarray]] | None = None
    for start, stop in row_ranges(rows, chunk_rows):
        parts = []
        for b in range(start // _BLOCK_ROWS, (stop - 1) // _BLOCK_ROWS + 1):
            if cached is None or cached[0] != b:
                n = min(_BLOCK_ROWS, rows - b * _BLOCK_ROWS)
                cached = (b, _block(p, seed, b, n, dim, nnz))
            lo = max(start - b * _BLOCK_ROWS, 0)
            hi = min(stop - b * _BLOCK_ROWS, _BLOCK_ROWS)
            parts.append(_cut(cached[1], lo, hi))
        yield _join(parts)


def _cut(blk: dict[str, np.ndarray], lo: int, hi: int) -> dict[str, np.ndarray]:
    ptr = blk["indptr"]
    return {
        "features": blk["features"][lo:hi],
        "label": blk["label"][lo:hi],
        "indptr": ptr[lo : hi + 1] - ptr[lo],
        "indices": blk["indices"][ptr[lo] : ptr[hi]],
    }


def _join(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    if len(parts) == 1:
        return parts[0]
    offsets = np.cumsum([0] + [int(q["indptr"][-1]) for q in parts[:-1]])
    return {
        "features": np.concatenate([q["features"] for q in parts]),
        "label": np.concatenate([q["label"] for q in parts]),
        "indptr": np.concatenate(
            [parts[0]["indptr"][:1]] + [q["indptr"][1:] + o for q, o in zip(parts, offsets)]
        ),
        "indices": np.concatenate([q["indices"] for q in parts]),
    }
