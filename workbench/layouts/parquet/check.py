"""verify's parquet checks: row counts, and every row group read with page-CRC verification."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from ...manifest import Column, Shard

__all__: list[str] = []


def check_shard(version_dir: Path, shard: Shard, columns: tuple[Column, ...]) -> list[str]:
    """Read every row group with page-CRC verification and check the row count."""
    problems = []
    for f in shard.files:
        path = version_dir / f.path
        try:
            pf = pq.ParquetFile(path, page_checksum_verification=True)
            if pf.metadata.num_rows != shard.rows:
                problems.append(f"{path}: {pf.metadata.num_rows} rows, manifest says {shard.rows}")
            for g in range(pf.num_row_groups):
                pf.read_row_group(g)
        except (OSError, pa.ArrowException, ValueError) as e:
            problems.append(f"{path}: {type(e).__name__}: {e}")
    return problems
