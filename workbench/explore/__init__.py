"""Explore a dataset before training on it.

- ``inspection`` (:func:`inspect`): layout, chunks, page cache, what each order costs; its facts
  are pure (``facts``), read from each storage's metadata (``metadata``) for the input's kind
  (``sources``);
- ``statistics`` (:func:`stats`): per-column statistics in one pass, from mergeable ``moments``;
- ``previews`` (:func:`preview`): the first rows or a seeded sample, images as thumbnails;
- ``advice`` (:func:`advise`): layout and loader advice, from pure ``layout_rules``;
- ``diagnoses`` (:func:`doctor`): the naive pitfalls of a Dataset or loader: each check in
  ``pitfalls``, worded by pure ``findings``, looking through ``probes``.

No module is named like a public function, so ``wb.explore.inspect`` is always the function.

Text and HTML are drawn by ``workbench.ui`` (every result is a ``shown.Shown``), so the CLI and
the notebook show the same facts.

>>> wb.explore.inspect("x.npy").kind
'npy'
"""

from __future__ import annotations

from .._lazy import attach

_EXPORTS = {
    "Advice": ".advice",
    "Diagnosis": ".diagnoses",
    "Finding": ".findings",
    "Inspection": ".inspection",
    "Preview": ".previews",
    "Stats": ".statistics",
    "advise": ".advice",
    "doctor": ".diagnoses",
    "inspect": ".inspection",
    "preview": ".previews",
    "stats": ".statistics",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = attach(__name__, _EXPORTS)
