"""``wb.publish(dataset, url)`` / ``workbench publish DATASET URL``: copy a committed dataset to any
writable fsspec location (``file://``, ``memory://``, ``s3://`` with its driver, ...) in the order
that keeps readers safe: every shard file first, then the manifest, then ``CURRENT`` last, so a
reader of ``url`` sees the old version or the new one, never half of one.

>>> m = publish("demo_data/demo.store", "memory://pub/demo.store")
>>> ds = wb.open_dataset("memory://pub/demo.store", cache_dir="c", cache_bytes=1 << 20)
>>> ds.get_batch([0])["label"].shape
torch.Size([1])
"""

from __future__ import annotations

import os
from typing import Any

from ..errors import RemoteError
from ..format.manifest import CURRENT_NAME, MANIFEST_NAME, Manifest

__all__ = ["publish"]


def publish(dataset: str | os.PathLike[str], url: str, *, progress: Any = None) -> Manifest:
    """Upload the committed version of ``dataset`` to ``url``; returns its manifest.

    Parameters
    ----------
    dataset : str or PathLike
        A committed workbench dataset, verified before anything is written.
    url : str
        A writable fsspec location; the version goes under it, then its ``CURRENT``.
    progress : callable, optional
        ``progress(files_done, files_total)``, called after each shard file.

    Returns
    -------
    Manifest
        The published version's manifest.

    Raises
    ------
    RemoteError
        ``url`` could not be written (a read-only or unreachable location).
    DatasetNotFoundError, CorruptDatasetError
        ``dataset`` is not a dataset, or its files disagree with its manifest.

    Examples
    --------
    >>> publish("demo_data/demo.store", "file://" + os.path.abspath("pub.store")).num_rows
    2000
    """
    import fsspec

    from ..format.catalog import read_manifest
    from ..format.integrity import verify

    version, manifest = read_manifest(dataset)
    verify(dataset)  # never publish a damaged copy (raises CorruptDatasetError naming the file)
    fs, root = fsspec.core.url_to_fs(url)
    root = root.rstrip("/")
    dest = f"{root}/{version.name}"
    files = [f.path for s in manifest.shards for f in s.files]
    try:
        for i, rel in enumerate(files):
            parent = f"{dest}/{rel}".rsplit("/", 1)[0]
            fs.makedirs(parent, exist_ok=True)
            fs.put_file(str(version / rel), f"{dest}/{rel}")
            if progress:
                progress(i + 1, len(files))
        fs.pipe_file(f"{dest}/{MANIFEST_NAME}", (version / MANIFEST_NAME).read_bytes())
        fs.pipe_file(f"{root}/{CURRENT_NAME}", version.name.encode() + b"\n")  # readers switch here
    except Exception as e:  # each fsspec backend raises its own types (aiohttp, botocore, ...)
        raise RemoteError(
            f"{url}: could not write ({type(e).__name__}: {e}); publish needs a "
            "writable fsspec location (file://, s3://, memory://; plain http:// is "
            "read-only)"
        ) from None
    return manifest
