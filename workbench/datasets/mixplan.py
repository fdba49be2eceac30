"""Which source, and which of its rows, each row of a weighted mixture is (pure index logic).

A mixture of sources ``s`` with weights ``w_s`` has ``L`` rows an epoch, ``n_s`` of them from
source ``s`` (the weights' share of ``L``, rounded so they sum to ``L``). Row ``v`` of the
mixture's epoch is a *slot*: the slots of each source are spread evenly over ``0..L-1``, so any
run of slots (a sequential or block-order batch) holds the sources in proportion, and a shuffle
of the slots (the loader's order) keeps the epoch's counts exact.

The ``k``-th slot of source ``s`` in epoch ``e`` takes that source's draw number
``g = e * n_s + k``: without replacement, position ``g % len_s`` of a permutation drawn afresh
for each pass ``g // len_s`` over the source, so a source larger than its share is read through
over the epochs, not the same rows each time; with replacement, uniform draws per epoch.

>>> p = MixPlan([100, 10], [0.5, 0.5], epoch="smallest", seed=0)
>>> p.rows, p.take            # the smaller source runs out after 10 of its rows
(20, (10, 10))
>>> source, row = p.locate(np.arange(20), epoch=0)
>>> np.bincount(source).tolist(), sorted(row[source == 1].tolist()) == list(range(10))
([10, 10], True)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import InvalidInputError

__all__: list[str] = []  # the mixture's own logic; wb.mix is the face


def shares(weights: Sequence[float], total: int) -> tuple[int, ...]:
    """``total`` split by ``weights`` in whole rows (largest remainders), summing to ``total``."""
    w = np.asarray(weights, dtype=np.float64)
    exact = w / w.sum() * total
    got = np.floor(exact).astype(np.int64)
    short = total - int(got.sum())
    if short:
        got[np.argsort(-(exact - got), kind="stable")[:short]] += 1
    return tuple(int(x) for x in got)


class MixPlan:
    """The slots of one mixture: ``rows`` an epoch, ``take[s]`` of them from source ``s``.

    Parameters
    ----------
    sizes : sequence of int
        Rows of each source.
    weights : sequence of float
        Each source's share of a batch (positive; normalised here).
    epoch : "smallest", "replacement" or int
        What an epoch is: until the source that runs out first (for its weight) is exhausted;
        ``sum(sizes)`` rows drawn with replacement; or that many rows (sources read through
        and begun again as needed).
    seed : int
        Seeds the per-source permutations and draws.
    """

    def __init__(
        self, sizes: Sequence[int], weights: Sequence[float], epoch: Any, seed: int
    ) -> None:
        self.sizes = tuple(int(n) for n in sizes)
        w = [float(x) for x in weights]
        if not self.sizes or len(w) != len(self.sizes):
            raise InvalidInputError("a mixture needs one weight per source, and a source")
        if any(not math.isfinite(x) or x <= 0 for x in w):
            raise InvalidInputError(f"mixture weights must be positive numbers, got {w}")
        if any(n < 1 for n in self.sizes):
            raise InvalidInputError(f"every source of a mixture needs rows, got sizes {sizes}")
        self.weights = tuple(x / sum(w) for x in w)
        self.epoch, self.seed = epoch, int(seed)
        self.replacement = epoch == "replacement"
        if epoch == "smallest":
            rows = min(math.floor(n / x + 1e-9) for n, x in zip(self.sizes, self.weights))
        elif self.replacement:
            rows = sum(self.sizes)
        elif isinstance(epoch, (int, np.integer)) and not isinstance(epoch, bool) and epoch > 0:
            rows = int(epoch)
        else:
            raise InvalidInputError(
                f"epoch={epoch!r}: pass 'smallest' (until a source runs out), 'replacement' "
                "(rows drawn with replacement) or a number of rows"
            )
        self.rows = max(1, rows)
        self.take = shares(self.weights, self.rows)
        if epoch == "smallest":  # rounding must not ask a source for more rows than it has
            self.take = tuple(min(t, n) for t, n in zip(self.take, self.sizes))
            self.rows = sum(self.take)
        self._slots: tuple[np.ndarray, np.ndarray] | None = None
        self._perms: dict[tuple[int, int], np.ndarray] = {}

    def slots(self) -> tuple[np.ndarray, np.ndarray]:
        """(source, ordinal) of every slot ``0..rows-1``: each source's slots evenly spaced."""
        if self._slots is None:
            keys = np.concatenate([(np.arange(t) + 0.5) / t for t in self.take if t])
            owner = np.concatenate([np.full(t, s, np.int32) for s, t in enumerate(self.take) if t])
            at = np.argsort(keys, kind="stable")
            ordinal = np.concatenate([np.arange(t, dtype=np.int64) for t in self.take if t])
            self._slots = owner[at], ordinal[at]
        return self._slots

    def _perm(self, s: int, cycle: int) -> np.ndarray:
        """Source ``s``'s rows in pass ``cycle``'s order; with replacement, epoch ``cycle``'s
        draws. Cached: a pass or two per source."""
        key = (s, cycle)
        if key not in self._perms:
            if len(self._perms) >= 2 * len(self.sizes):
                self._perms.clear()
            rng = np.random.default_rng([self.seed, s, cycle, 0x6D6978, self.replacement])
            n = self.sizes[s]
            self._perms[key] = (
                rng.integers(0, n, size=self.take[s]) if self.replacement else rng.permutation(n)
            )
        return self._perms[key]

    def locate(self, slots: Any, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        """(source, row in that source) of each of ``slots`` in ``epoch``.

        Parameters
        ----------
        slots : array-like of int
            Rows of the mixture's epoch, ``0..rows-1``.
        epoch : int
            The epoch they belong to.

        Returns
        -------
        tuple of numpy.ndarray
            The source of each, and its row there.
        """
        owner, ordinal = self.slots()
        v = np.asarray(slots, dtype=np.int64)
        src, k = owner[v], ordinal[v]
        rows = np.empty(len(v), np.int64)
        for s in np.unique(src).tolist():
            mine = src == s
            n, t = self.sizes[s], self.take[s]
            if self.replacement:
                rows[mine] = self._perm(s, epoch)[k[mine]]
                continue
            g = epoch * t + k[mine]
            cycle, pos = np.divmod(g, n)
            got = np.empty(len(g), np.int64)
            for c in np.unique(cycle).tolist():
                at = cycle == c
                got[at] = self._perm(s, int(c))[pos[at]]
            rows[mine] = got
        return src.astype(np.int64), rows

    def __getstate__(self) -> dict[str, Any]:
        # the slots and permutations are rebuilt where they are used (a worker process)
        return {**self.__dict__, "_slots": None, "_perms": {}}
