"""One reader per source kind, all speaking the Dataset protocol of ``docs/CONTRACTS.md``.

``workbench.datasets.open_dataset`` picks the reader; import from there.
"""

from .arrays import MemoryDataset, StoreDataset
from .base import BaseDataset, ReadStats
from .blocks import DaskDataset
from .hdf5 import Hdf5Dataset
from .parquet import ParquetDataset

__all__ = ["BaseDataset", "DaskDataset", "Hdf5Dataset", "MemoryDataset", "ParquetDataset",
           "ReadStats", "StoreDataset"]
