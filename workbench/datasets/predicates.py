"""Row filters as data (pure): pyarrow's ``filters`` form, checked once against the columns and
evaluated on one chunk of rows at a time.

A filter is a term ``(column, op, value)``, a list of terms (all must hold) or a list of such
lists (any may hold), as ``pyarrow.parquet.read_table(filters=...)`` takes them; ``op`` is one
of ``OPS``.

>>> f = Predicate([("label", "in", [1, 3]), ("x", ">", 0.5)], ["label", "x"])
>>> f.columns, f.mask({"label": np.array([1, 2, 3]), "x": np.array([0.9, 0.9, 0.1])}).tolist()
(('label', 'x'), [True, False, False])
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..errors import InvalidInputError

__all__: list[str] = []

_COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "==": operator.eq,
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
OPS = (*_COMPARE, "in", "not in")


def _is_term(x: Any) -> bool:
    return isinstance(x, tuple) and len(x) == 3 and isinstance(x[0], str)


def _clauses(where: Any) -> list[list[tuple[str, str, Any]]]:
    """The filter in disjunctive normal form: any clause, each clause all of its terms."""
    if _is_term(where):
        return [[where]]
    if isinstance(where, Sequence) and where and all(_is_term(t) for t in where):
        return [list(where)]
    if (
        isinstance(where, Sequence)
        and where
        and all(isinstance(c, Sequence) and c and all(_is_term(t) for t in c) for c in where)
    ):
        return [list(c) for c in where]
    raise InvalidInputError(
        f"where={where!r}: pass a term (column, op, value) such as ('label', 'in', [1, 3]), a "
        "list of terms (all must hold), a list of such lists (any may hold), or a callable "
        "taking a batch (column -> tensor) and returning a boolean mask"
    )


class Predicate:
    """A filter checked against ``columns`` (the dataset's), then evaluated chunk by chunk.

    Parameters
    ----------
    where : tuple, list of tuples or list of lists of tuples
        The filter (see the module docstring).
    columns : sequence of str, optional
        The columns it may name (None: not checked here).

    Raises
    ------
    InvalidInputError
        A malformed filter, an unknown operator, a column the dataset lacks, or an ``in``
        without a list of values.
    """

    def __init__(self, where: Any, columns: Sequence[str] | None = None) -> None:
        self.clauses = _clauses(where)
        have = None if columns is None else list(columns)
        named: list[str] = []
        for clause in self.clauses:
            for col, op, value in clause:
                if op not in OPS:
                    raise InvalidInputError(
                        f"where: operator {op!r} in ({col!r}, {op!r}, ...) is not one of "
                        f"{', '.join(OPS)}"
                    )
                if have is not None and col not in have:
                    raise InvalidInputError(
                        f"where: column {col!r} is not in the dataset (its columns: {have}); "
                        "name one of them, or open the dataset with it in columns=[...]"
                    )
                if (
                    op in ("in", "not in")
                    and isinstance(value, (str, bytes))
                    or (
                        op in ("in", "not in")
                        and not isinstance(value, (Sequence, np.ndarray, set))
                    )
                ):
                    raise InvalidInputError(
                        f"where: ({col!r}, {op!r}, {value!r}) needs a list of values, such as "
                        f"({col!r}, {op!r}, [1, 3])"
                    )
                if col not in named:
                    named.append(col)
        self.columns = tuple(named)

    def mask(self, chunk: dict[str, np.ndarray]) -> np.ndarray:
        """Which rows of ``chunk`` (column -> array of its rows) the filter keeps.

        Parameters
        ----------
        chunk : dict of str to numpy.ndarray
            At least :attr:`columns`, one value a row.

        Returns
        -------
        numpy.ndarray
            A boolean array, one a row.
        """
        n = len(next(iter(chunk.values())))
        keep = np.zeros(n, bool)
        for clause in self.clauses:
            hold = np.ones(n, bool)
            for col, op, value in clause:
                v = np.asarray(chunk[col])
                if v.ndim != 1:
                    raise InvalidInputError(
                        f"where: column {col!r} has {v.ndim - 1}-d rows; a filter compares "
                        "one value a row (filter with a callable on the batch instead)"
                    )
                if op in ("in", "not in"):
                    got = np.isin(v, np.asarray(list(value)))
                    hold &= ~got if op == "not in" else got
                else:
                    hold &= np.asarray(_COMPARE[op](v, value), bool)
            keep |= hold
        return keep
