"""A committed workbench dataset as a conversion input: re-layout it (``store`` -> ``parquet``, ...)
or select, drop and transform its columns, through the layout's own reader.

>>> m = wb.convert("demo_data/demo.store", "demo.parquet.ds", format="parquet", drop=["tokens"])
>>> m.layout, [c.name for c in m.columns], m.num_rows
('parquet', ['features', 'label'], 2000)
"""

from __future__ import annotations

from typing import Any

from ..errors import InvalidInputError
from ..format.catalog import read_manifest
from ..format.chunks import Chunk
from ..format.schema import check_columns, select
from .base import Source

__all__: list[str] = []


class DatasetSource(Source):
    """Rows of a committed dataset, read by range with its layout's reader (pickles small)."""

    splittable = True

    def __init__(
        self,
        path: str,
        *,
        columns=None,
        drop=None,
        target=None,
        sparse=None,
        nan="error",
        dtype=None,
    ):
        super().__init__()
        if sparse:
            raise InvalidInputError(
                f"{path}: sparse= does not apply to a workbench dataset (its "
                "columns already say which are sparse); leave it out"
            )
        if dtype is not None:
            raise InvalidInputError(
                f"{path}: dtype= does not apply to a workbench dataset; cast in a transform instead"
            )
        self.version, self.manifest = read_manifest(path)
        self.path = self.where = path
        self.nan = nan
        names = [c.name for c in self.manifest.columns]
        if target is not None and target not in names:
            raise InvalidInputError(
                f"{path}: target={target!r} is not a column; the columns are {names}"
            )
        keep = [target] if target else []
        self._cols = check_columns(
            self.manifest.columns, select(path, names, columns, drop, keep), path
        )
        self.num_rows = self.manifest.num_rows
        self.description = f"workbench dataset {path} ({self.manifest.layout}, {self.version.name})"
        self.feature_names = {c.name: c.names for c in self._cols if c.names}
        self._reader: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_reader": None}

    def fingerprint(self) -> str | None:
        digests = "|".join(f.xxh3 for s in self.manifest.shards for f in s.files)
        return f"{self.version.name}:{digests}"

    def _read(self, start: int, stop: int) -> Chunk:
        from ..layouts import open_reader

        if self._reader is None:
            self._reader = open_reader(self.version, self.manifest, self._cols)
        return self._reader.read_chunk(start, stop)  # type: ignore[no-any-return]


def folder_dataset(source: Any, where: str, columns: Any, **kw: Any) -> Any:
    """``open_dataset`` of a workbench dataset folder: its layout's reader."""
    from ..layouts import open_reader

    version, manifest = read_manifest(source)  # checks every file's size
    return open_reader(
        version, manifest, check_columns(manifest.columns, columns, str(version)), **kw
    )
