"""The only module that creates, renames or deletes dataset folders.

A conversion writes into ``dest/v-<id>.partial/``. Commit renames it to ``dest/v-<id>/`` and then
atomically replaces ``dest/CURRENT`` (one ``os.replace``) to point at it. A process killed at any
instant leaves either the previous ``CURRENT`` (old dataset, or none) or the new one.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ..errors import DatasetExistsError, IncompatibleResumeError, InvalidInputError
from ..format.catalog import is_dataset_dir
from ..format.files import fsync_path, write_atomic
from ..format.manifest import CURRENT_NAME, MANIFEST_NAME, FileEntry, Manifest, Shard

__all__: list[str] = []

JOURNAL_NAME = "journal.json"
PARTIAL = ".partial"


class Staging:
    """A ``v-<id>.partial`` folder plus its resume journal (one entry per finished shard)."""

    def __init__(self, dest: Path, folder: Path, key: dict[str, Any], durable: bool) -> None:
        self.dest, self.folder, self.key, self.durable = dest, folder, key, durable
        self.done: dict[int, Shard] = {}

    def record(self, index: int, shard: Shard) -> None:
        self.done[index] = shard
        body = {
            "key": self.key,
            "shards": {str(i): asdict(s) for i, s in sorted(self.done.items())},
        }
        write_atomic(self.folder / JOURNAL_NAME, json.dumps(body), self.durable)


def begin(
    dest: Path, key: dict[str, Any], *, overwrite: bool, resume: bool, durable: bool
) -> Staging:
    """Refuse to clobber, or find the interrupted run to resume, or start a fresh staging folder."""
    key = json.loads(json.dumps(key))  # compare in the journal's own (JSON) form
    if dest.exists() and not dest.is_dir():
        raise DatasetExistsError(f"{dest} exists and is a file; choose another destination")
    if is_dataset_dir(dest) and not (overwrite or resume):
        raise DatasetExistsError(
            f"{dest} already holds a dataset; pass overwrite=True (--overwrite) to replace it "
            "atomically, or choose another destination"
        )
    if dest.is_dir() and not is_dataset_dir(dest) and not all(_ours(p) for p in dest.iterdir()):
        raise InvalidInputError(
            f"{dest} is a non-empty folder that is not a workbench dataset; "
            "choose an empty or new path"
        )
    dest.mkdir(parents=True, exist_ok=True)
    if resume:
        staging = _find_resumable(dest, key, durable)
        if staging is not None:
            return staging
    folder = dest / f"v-{secrets.token_hex(6)}{PARTIAL}"
    folder.mkdir()
    return Staging(dest, folder, key, durable)


def _ours(p: Path) -> bool:
    """Debris an interrupted conversion may leave: version folders and pointer temp files."""
    return (p.name.startswith("v-") and p.is_dir()) or p.name.startswith(f".{CURRENT_NAME}.")


def _find_resumable(dest: Path, key: dict[str, Any], durable: bool) -> Staging | None:
    partials = sorted(
        (p for p in dest.glob(f"v-*{PARTIAL}") if (p / JOURNAL_NAME).is_file()),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    if not partials:
        return None
    folder = partials[0]
    try:
        body = json.loads((folder / JOURNAL_NAME).read_text())
    except (OSError, ValueError):
        return None
    old = body.get("key", {})
    if old.get("fingerprint") != key.get("fingerprint"):
        raise IncompatibleResumeError(
            f"{dest}: the source changed since the interrupted conversion ({folder.name}); "
            "rerun without resume=True (or with overwrite=True) to start over"
        )
    changed = sorted(k for k in set(old) | set(key) if old.get(k) != key.get(k))
    if changed:
        raise IncompatibleResumeError(
            f"{dest}: options {changed} differ from the interrupted conversion ({folder.name}); "
            "resume with the same options, or start over without resume=True"
        )
    staging = Staging(dest, folder, key, durable)
    for i, s in body.get("shards", {}).items():
        staging.done[int(i)] = Shard(
            rows=s["rows"], files=tuple(FileEntry(**f) for f in s["files"])
        )
    return staging


def commit(staging: Staging, manifest: Manifest) -> Path:
    """Write the manifest, rename the staging folder, then swap CURRENT in one ``os.replace``."""
    folder = staging.folder
    final = folder.with_name(folder.name[: -len(PARTIAL)])
    try:
        (folder / JOURNAL_NAME).unlink(missing_ok=True)
        write_atomic(folder / MANIFEST_NAME, manifest.to_json(), staging.durable)
        os.rename(folder, final)
        if staging.durable:
            fsync_path(staging.dest)
        write_atomic(staging.dest / CURRENT_NAME, final.name + "\n", staging.durable)
    except Exception:  # a full disk before the swap: CURRENT still names the old version
        staging.folder = final if final.exists() else folder
        abort(staging)
        raise
    if staging.durable:
        fsync_path(staging.dest)
    _remove_stale(staging.dest, keep=final.name)
    return final


def abort(staging: Staging) -> None:
    """Drop a staging folder after a validation error or a full disk: nothing half-written stays
    behind."""
    shutil.rmtree(staging.folder, ignore_errors=True)
    try:
        staging.dest.rmdir()  # only succeeds when we created an otherwise empty folder
    except OSError:
        pass


def _remove_stale(dest: Path, keep: str) -> None:
    # Old versions and abandoned partials; readers that already mapped old files keep them
    # (unlinked).
    for p in dest.iterdir():
        if p.name != keep and p.name.startswith("v-") and p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        elif p.name.startswith(".CURRENT.") and p.name.endswith(".tmp"):
            p.unlink(missing_ok=True)
