"""Find the committed version of a dataset directory and read its manifest (read-only).

>>> version_dir, manifest = read_manifest("demo_data/demo.store")
>>> manifest.num_rows
2000
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import CorruptDatasetError, DatasetNotFoundError
from .manifest import CURRENT_NAME, MANIFEST_NAME, Manifest

__all__ = ["read_manifest"]


def is_dataset_dir(path: str | os.PathLike[str]) -> bool:
    """True if ``path`` is a workbench dataset (a CURRENT pointer or a version with a manifest)."""
    p = Path(path)
    return (p / CURRENT_NAME).is_file() or (p / MANIFEST_NAME).is_file()


def resolve(path: str | os.PathLike[str]) -> Path:
    """The committed version folder of ``path`` (read once: later commits do not move a reader)."""
    p = Path(path)
    if (p / CURRENT_NAME).is_file():
        name = (p / CURRENT_NAME).read_text().strip()
        if not name or "/" in name or name.startswith("."):
            raise CorruptDatasetError(
                f"{p / CURRENT_NAME}: garbled pointer {name!r}; convert again"
            )
        version = p / name
        if not (version / MANIFEST_NAME).is_file():
            raise CorruptDatasetError(
                f"{p}: CURRENT names {name!r} but {version / MANIFEST_NAME} is missing; "
                "restore it or convert again"
            )
        return version
    if (p / MANIFEST_NAME).is_file():
        return p
    if not p.exists():
        raise DatasetNotFoundError(f"{p}: no such dataset; create one with workbench.convert(...)")
    raise DatasetNotFoundError(
        f"{p}: not a committed workbench dataset (no {CURRENT_NAME} or {MANIFEST_NAME}); an "
        "interrupted conversion leaves only .partial folders: rerun it with resume=True"
    )


def read_manifest(path: str | os.PathLike[str], check_sizes: bool = True) -> tuple[Path, Manifest]:
    """Resolve ``path``, parse its manifest and (cheaply) check every file's size.

    Parameters
    ----------
    path : str or PathLike
        A dataset folder (its ``CURRENT`` names the committed version) or a version folder.
    check_sizes : bool, default True
        Check that every file the manifest lists exists with its recorded size.

    Returns
    -------
    version_dir : pathlib.Path
        The committed version's folder (read once: a later commit does not move it).
    manifest : Manifest
        Its parsed manifest.

    Raises
    ------
    DatasetNotFoundError
        ``path`` is not a committed workbench dataset.
    CorruptDatasetError
        A garbled ``CURRENT``, a missing or unreadable manifest, or files missing or resized.

    Examples
    --------
    >>> version_dir, manifest = read_manifest("demo_data/demo.store")
    >>> version_dir.parent.name, manifest.num_rows, [c.name for c in manifest.columns]
    ('demo.store', 2000, ['features', 'tokens', 'label'])
    """
    version = resolve(path)
    mpath = version / MANIFEST_NAME
    try:
        text = mpath.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise CorruptDatasetError(f"{mpath}: cannot read manifest ({e}); convert again") from None
    manifest = Manifest.from_json(text, where=str(mpath))
    if check_sizes:
        problems = size_problems(version, manifest)
        if problems:
            raise CorruptDatasetError(
                f"{version}: {len(problems)} bad file(s): "
                + "; ".join(problems.values())
                + ". Run `workbench verify` for a full report, then convert again"
            )
    return version, manifest


def size_problems(version: Path, manifest: Manifest) -> dict[Path, str]:
    """A message for each file that is missing or whose size differs from the manifest."""
    out = {}
    for shard in manifest.shards:
        for f in shard.files:
            fp = version / f.path
            try:
                size = fp.stat().st_size
            except FileNotFoundError:
                out[fp] = f"{fp} is missing"
                continue
            if size != f.bytes:
                out[fp] = f"{fp} has {size} bytes, manifest says {f.bytes}"
    return out
