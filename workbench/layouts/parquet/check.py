"""verify's parquet checks: row counts, and every row group read with page-CRC verification."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from ...format.manifest import Column, Shard
from ..base import check_files

__all__: list[str] = []


def check_shard(version_dir: Path, shard: Shard, columns: tuple[Column, ...]) -> list[str]:
    """Read every row group with page-CRC verification and check the row count."""

    def check(path: Path, problems: list[str]) -> None:
        pf = pq.ParquetFile(path, page_checksum_verification=True)
        if pf.metadata.num_rows != shard.rows:
            problems.append(f"{path}: {pf.metadata.num_rows} rows, manifest says {shard.rows}")
        for g in range(pf.num_row_groups):
            pf.read_row_group(g)

    return check_files(version_dir, shard, check, (OSError, pa.ArrowException, ValueError))
