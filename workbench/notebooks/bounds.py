"""What ``wb.expect`` asks of a figure, as plain data (pure): ``">= 1e6"``, ``"<= 2GiB"``,
``">= 0.8x gather limit"``, ``">= 0.9x last run"``, parsed into a :class:`Bound` that checks a
measured value against an absolute number or a reference measured on the same machine.

>>> b = parse_bound("pss", "<= 2GiB"); b.limit(), b.met(1.5 * 2**30)
(2147483648.0, True)
>>> b = parse_bound("samples_per_s", ">= 0.8x gather limit"); b.limit(5e6)
4000000.0
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import InvalidInputError
from ..units import human_bytes

__all__: list[str] = []

OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
    "==": operator.eq,
}
REFERENCES = ("gather limit", "last run")
SCALE = {
    "": 1.0,
    "k": 1e3,
    "m": 1e6,
    "g": 1e9,
    "b": 1.0,
    "kb": 1e3,
    "mb": 1e6,
    "gb": 1e9,
    "tb": 1e12,
    "kib": 2.0**10,
    "mib": 2.0**20,
    "gib": 2.0**30,
    "tib": 2.0**40,
    "%": 0.01,
}
_FORM = re.compile(
    r"^\s*(?P<op>>=|<=|==|>|<)\s*(?P<num>[-+]?\d[\d_,]*(?:\.\d*)?(?:[eE][-+]?\d+)?)\s*"
    r"(?:(?P<x>x)\s+(?P<ref>gather limit|last run)|(?P<unit>[kKmMgGtT]?i?[bB]|[kKMG]|%)?)\s*$"
)
BYTE_FIGURES = ("pss", "rss", "uss", "real", "peak_bytes")


@dataclass(frozen=True)
class Bound:
    """``figure op number`` or ``figure op factor x reference``.

    Parameters
    ----------
    figure : str
        What is measured (``samples_per_s``, ``pss``, ...).
    text : str
        The expectation as written.
    op : str
        One of ``>=``, ``<=``, ``>``, ``<``, ``==``.
    number : float
        The absolute limit, or the factor of ``reference``.
    reference : str, optional
        ``"gather limit"`` or ``"last run"``: the limit is ``number`` times it.
    """

    figure: str
    text: str
    op: str
    number: float
    reference: str | None = None

    def limit(self, reference_value: float | None = None) -> float | None:
        """The number the figure is compared with (None: a reference not measured yet).

        Parameters
        ----------
        reference_value : float, optional
            The reference's value, for a relative bound.

        Returns
        -------
        float or None
        """
        if self.reference is None:
            return self.number
        return None if reference_value is None else self.number * reference_value

    def met(self, value: float, reference_value: float | None = None) -> bool:
        """Whether ``value`` meets the bound (a relative bound with no reference yet does).

        Parameters
        ----------
        value : float
            The measured figure.
        reference_value : float, optional
            The reference's value, for a relative bound.

        Returns
        -------
        bool
        """
        limit = self.limit(reference_value)
        return True if limit is None else bool(OPS[self.op](value, limit))


def parse_bound(figure: str, text: str) -> Bound:
    """``text`` (``">= 1e6"``, ``"<= 2GiB"``, ``">= 0.8x gather limit"``) as a :class:`Bound`.

    Parameters
    ----------
    figure : str
        The figure it bounds.
    text : str
        The expectation: an operator, a number with an optional unit (k, M, G; B, KB, MB, GB;
        KiB, MiB, GiB, TiB; %), or a factor followed by ``x gather limit`` or ``x last run``.

    Returns
    -------
    Bound

    Raises
    ------
    InvalidInputError
        ``text`` is none of those forms (the message shows them).
    """
    m = _FORM.match(text) if isinstance(text, str) else None
    if m is None:
        raise InvalidInputError(
            f"wb.expect: {figure}={text!r} is not an expectation; write e.g. '>= 1e6', "
            f"'<= 2GiB', '>= 0.8x gather limit' or '>= 0.9x last run'"
        )
    number = float(m["num"].replace("_", "").replace(",", ""))
    if m["x"]:
        return Bound(figure, text.strip(), m["op"], number, m["ref"])
    return Bound(figure, text.strip(), m["op"], number * SCALE[(m["unit"] or "").lower()])


def show(figure: str, value: float) -> str:
    """A measured figure as the sanitizers recognise it: bytes in binary units, rates with
    their unit, fractions as they are.

    Parameters
    ----------
    figure : str
        Its name (decides the unit).
    value : float
        Its value.

    Returns
    -------
    str
    """
    if not math.isfinite(value):
        return str(value)
    if figure in BYTE_FIGURES or figure.endswith("_bytes"):
        return human_bytes(value)
    if figure.endswith("_per_s"):
        unit = figure[: -len("_per_s")].replace("mb", "MB")
        return f"{value:,.0f} {unit}/s"
    return f"{value:.3g}"
