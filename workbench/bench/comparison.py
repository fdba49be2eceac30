"""What :func:`~workbench.bench.limits.compare_orders` measured, and the words it prints: each
reader's rounds (:class:`Reading`), and :class:`OrderComparison`, which sets every order beside
its limit and the naive Datasets (the ratios, the table, one verdict per order).

A ratio is the median of per-round ratios: the readers take turns, so round ``i`` of two readers
ran under the same load, and a busy moment slows both sides of one ratio rather than one reader.
Its quartiles are the spread a claim must survive (a goal holds when its lower quartile does).

>>> quartiles([1.0, 2.0, 3.0, 4.0, 5.0])
(2.0, 3.0, 4.0)
"""

from __future__ import annotations

import statistics
import textwrap
from dataclasses import dataclass

from ..units import human_bytes

__all__ = ["OrderComparison", "quartiles"]

COMPARED = ("sequential", "block", "full")
LIMITS = {
    "sequential": "a zero-copy read of the same batches",
    "block": "a memcpy of the same bytes",
    "full": "the random-gather limit",
}
LABELS = {"sequential": "sequential", "block": "block", "full": "full shuffle"}


@dataclass(frozen=True)
class Reading:
    """One reader's rounds: ``kind`` is "limit", "workbench" or "naive"; ``runs`` holds the
    rows/s of every round in round order, ``rows_per_s`` and ``mb_per_s`` their median."""

    name: str
    kind: str
    order: str
    rows_per_s: float
    mb_per_s: float
    runs: tuple[float, ...]


@dataclass(frozen=True)
class OrderComparison:
    """What :func:`~workbench.bench.limits.compare_orders` measured; every ratio is computed
    from these readings.

    Parameters
    ----------
    source : str
        The store that was read.
    rows : int
        Rows in its first shard, the rows every reader reads.
    row_bytes : int
        Bytes of one row of the compared columns.
    batch_size : int
        Rows per batch, for every reader.
    seconds : float
        The length of one round of one reader.
    rounds : int
        Rounds each reader ran (after a warm-up round that is not kept).
    readings : tuple of Reading
        Every reader's rounds: the limits, workbench's loader in each order, the naive
        Datasets.
    """

    source: str
    rows: int
    row_bytes: int
    batch_size: int
    seconds: float
    rounds: int
    readings: tuple[Reading, ...]

    def _of(self, kind: str, order: str) -> list[Reading]:
        return [r for r in self.readings if r.kind == kind and r.order == order]

    def limit(self, order: str) -> Reading:
        """The order's limit: the fastest limit reader for it (for "full", the faster gather)."""
        return max(self._of("limit", order), key=lambda r: r.rows_per_s)

    def ours(self, order: str) -> Reading:
        return self._of("workbench", order)[0]

    def naive(self, order: str) -> list[Reading]:
        return self._of("naive", order)

    def ratios(self, order: str, against: Reading | None = None) -> tuple[float, ...]:
        """workbench's rows/s in ``order`` over ``against`` (default: the order's limit), round
        by round."""
        return paired(self.ours(order), against or self.limit(order))

    def ratio(self, order: str, against: Reading | None = None) -> float:
        """The median of :meth:`ratios`."""
        return quartiles(list(self.ratios(order, against)))[1]

    def spread(self, order: str, against: Reading | None = None) -> tuple[float, float]:
        """The lower and upper quartile of :meth:`ratios`."""
        lo, _, hi = quartiles(list(self.ratios(order, against)))
        return lo, hi

    def header(self) -> str:
        return (
            f"{self.rows:,} rows x {self.row_bytes:,} B ({human_bytes(self.rows * self.row_bytes)})"
            f" of {self.source}, batch {self.batch_size:,}, warm page cache; the naive Datasets"
            f" through DataLoader(num_workers=0); every reader sums each batch; medians of"
            f" {self.rounds} interleaved rounds of {self.seconds:g} s each, ratios taken round by"
            f" round (their quartiles in brackets)"
        )

    def table(self) -> str:
        lines = [f"{'reader':<59}{'order':<11}{'rows/s':>11}{'MB/s':>8}{'IQR':>7}"]
        for r in self.readings:  # the spread of its rounds, as a share of their median
            lo, mid, hi = quartiles(list(r.runs))
            iqr = f"{(hi - lo) / mid:.0%}" if mid else "-"
            lines.append(
                f"{r.name:<59}{r.order:<11}{r.rows_per_s:>11,.0f}{r.mb_per_s:>8,.0f}{iqr:>7}"
            )
        return "\n".join(lines)

    def verdicts(self) -> list[str]:
        """One sentence per order: its rate, then each ratio spelled out (wrapped at 96)."""
        out = []
        for order in COMPARED:
            lim = self.limit(order)
            words = (
                f"{LABELS[order]}: {_rate(self.ours(order).rows_per_s)} rows/s = "
                f"{self._ratio_words(order)} {LIMITS[order]} ({_rate(lim.rows_per_s)} rows/s"
                f"{', ' + lim.name.split(', ', 1)[1] if order == 'full' else ''})"
            )
            naive = [
                f"{self._ratio_words(order, r)} {r.name.removeprefix('naive: ')}"
                for r in self.naive(order)
            ]
            for r in self._of("runs", order):  # the option that trades mixing for copy speed
                rows = r.name.split("run_rows=")[1].rstrip(")")
                lo, mid, hi = quartiles(list(paired(r, lim)))
                words += (
                    f"; with run_rows={rows}: {_times(mid)} [{_times(lo)}-{_times(hi)}] "
                    f"{LIMITS[order]}"
                )
            out.append(
                textwrap.fill(
                    words + ("; " + ", ".join(naive) if naive else ""),
                    96,
                    subsequent_indent="    ",
                    break_on_hyphens=False,
                )
            )
        return out

    def _ratio_words(self, order: str, against: Reading | None = None) -> str:
        lo, hi = self.spread(order, against)
        return f"{_times(self.ratio(order, against))} [{_times(lo)}-{_times(hi)}]"

    def text(self) -> str:
        """The header, the table and the verdicts: what the demo and the notebook print."""
        head = textwrap.fill(self.header(), 96, break_on_hyphens=False)
        return "\n".join([head, "", self.table(), "", *self.verdicts()])


def quartiles(values: list[float]) -> tuple[float, float, float]:
    """The lower quartile, the median and the upper quartile of ``values`` (inclusive method:
    one value is all three).

    Parameters
    ----------
    values : list of float
        At least one.

    Returns
    -------
    tuple of float
    """
    if len(values) == 1:
        return values[0], values[0], values[0]
    lo, mid, hi = statistics.quantiles(values, n=4, method="inclusive")
    return lo, mid, hi


def paired(a: Reading, b: Reading) -> tuple[float, ...]:
    """``a``'s rows/s over ``b``'s, round by round (they took turns in each round)."""
    return tuple(x / y if y else float("inf") for x, y in zip(a.runs, b.runs))


def _rate(x: float) -> str:
    return f"{x / 1e6:.2f} M" if x >= 1e6 else f"{x / 1e3:.0f} k" if x >= 1e4 else f"{x:,.0f}"


def _times(x: float) -> str:
    return f"{x:.2f}x" if x < 10 else f"{x:,.0f}x"
