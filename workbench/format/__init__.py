"""What a dataset is, in memory and once committed on disk.

- pure: ``sparse`` (:class:`CSR` rows), ``chunks`` (a dict of equal-length columns: cut, join,
  rebatch), ``schema`` (columns inferred from a first chunk, later ones held to them),
  ``manifest`` (:class:`Manifest`, :class:`Column`, shards and files, and their JSON form);
- on disk: ``files`` (digests, fsync, atomic small writes), ``catalog`` (the ``CURRENT`` pointer and
  :func:`read_manifest`), ``integrity`` (:func:`verify`), ``summary`` (:func:`info`).

>>> version_dir, manifest = wb.format.read_manifest("demo_data/demo.store"); manifest.layout
'store'
"""

from __future__ import annotations

from .._lazy import attach

_EXPORTS = {
    "CSR": ".sparse",
    "Column": ".manifest",
    "Manifest": ".manifest",
    "VerifyReport": ".integrity",
    "info": ".summary",
    "read_manifest": ".catalog",
    "verify": ".integrity",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = attach(__name__, _EXPORTS)
