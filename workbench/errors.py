"""Every error workbench raises, rooted at :class:`WorkbenchError`.

Each error also subclasses the builtin a caller would naturally catch, so
``except FileNotFoundError`` keeps working::

    WorkbenchError
    ├── InvalidInputError (ValueError)        bad source data: names file, row, column
    │   ├── UnsafeInputError                  pickled / object data we refuse to read
    │   └── TransformError                    a transform returned the wrong dtype/shape
    ├── SourceNotFoundError (FileNotFoundError)
    ├── DatasetNotFoundError (FileNotFoundError)
    ├── DatasetExistsError (FileExistsError)
    ├── CorruptDatasetError (OSError)         sizes, checksums or manifest disagree
    ├── DiskFullError (OSError)               no room left: names folder, bytes needed and free
    ├── IncompatibleResumeError (ValueError)  resume=True but source or options changed
    ├── ColumnNotFoundError (KeyError)        a column name that is not in the dataset
    ├── RemoteError (ConnectionError)         a remote dataset could not be read or written
    └── LoaderError (RuntimeError)
        ├── WorkerError                       a worker raised; names the batch indices
        │                                     (and is the dataset's own class too:
        │                                     in_worker)
        └── LoaderTimeoutError (TimeoutError) a worker died or hung

Warnings, rooted at :class:`WorkbenchWarning` (a ``UserWarning``), so ``warnings.simplefilter``
can silence or raise all of ours at once::

    WorkbenchWarning (UserWarning)
    ├── PerformanceWarning                    works, but slower than it should (a pitfall)
    │   └── SharedMemoryWarning               /dev/shm too small for process workers
    └── MemoryBudgetWarning (ResourceWarning) a setting would exceed the memory budget
"""

from __future__ import annotations

import copyreg
import functools
from typing import Any

__all__ = [
    "ColumnNotFoundError",
    "CorruptDatasetError",
    "DatasetExistsError",
    "DatasetNotFoundError",
    "DiskFullError",
    "ExpectationError",
    "IncompatibleResumeError",
    "InvalidInputError",
    "LoaderError",
    "LoaderTimeoutError",
    "MemoryMapError",
    "MemoryBudgetWarning",
    "PerformanceWarning",
    "RemoteError",
    "SharedMemoryWarning",
    "SourceNotFoundError",
    "TransformError",
    "UnsafeInputError",
    "WorkbenchError",
    "WorkbenchWarning",
    "WorkerError",
]


class WorkbenchError(Exception):
    """Root of every error raised by workbench."""


class InvalidInputError(WorkbenchError, ValueError):
    """The source data cannot be converted as given; the message says where and what to do."""


class UnsafeInputError(InvalidInputError):
    """The input would need pickle or arbitrary objects to read; workbench refuses."""


class TransformError(InvalidInputError):
    """A user transform raised, or returned columns whose dtype or shape changed."""


class SourceNotFoundError(WorkbenchError, FileNotFoundError):
    """A source file, folder or HDF5 key does not exist."""


class DatasetNotFoundError(WorkbenchError, FileNotFoundError):
    """No committed dataset lives at the given path."""


class DatasetExistsError(WorkbenchError, FileExistsError):
    """The destination already holds a dataset and ``overwrite`` was not given."""


class CorruptDatasetError(WorkbenchError, OSError):
    """A dataset's files disagree with its manifest (size, checksum, header, schema)."""


class DiskFullError(WorkbenchError, OSError):
    """The disk filled up (ENOSPC) or would: names the folder, the bytes needed and those free."""


class ExpectationError(WorkbenchError, AssertionError):
    """A figure measured in a notebook missed its ``wb.expect`` bound; the message has both."""


class MemoryMapError(WorkbenchError, OSError):
    """Memory for a RAM tier could not be mapped or advised (the kernel's errno is kept)."""


class IncompatibleResumeError(WorkbenchError, ValueError):
    """``resume=True`` was asked but the source or the options changed since the interrupted run."""


class ColumnNotFoundError(WorkbenchError, KeyError):
    """A column name that the dataset does not have; the message lists the ones it has."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class RemoteError(WorkbenchError, ConnectionError):
    """A remote dataset could not be read (after retries) or written; names the URL."""


class LoaderError(WorkbenchError, RuntimeError):
    """Loading batches failed."""


class WorkerError(LoaderError):
    """Reading a batch raised inside a worker; the message names the indices."""


class _InWorker(type):
    """The metaclass of "the reader's class and WorkerError" classes: made on demand, so pickle
    (a worker process sending its error) rebuilds them by their base instead of by name."""


@functools.lru_cache(maxsize=256)
def _both(cls: Any) -> Any:
    if issubclass(cls, WorkerError):
        return cls
    return _InWorker(cls.__name__, (cls, WorkerError), {"__module__": cls.__module__})


def _rebuild(c: Any) -> Any:
    return (_both, (c.__bases__[0],))


copyreg.pickle(_InWorker, _rebuild)


def in_worker(exc: BaseException, message: str) -> WorkerError:
    """``message`` as an error of ``exc``'s own class that is also a :class:`WorkerError`, so
    ``except CorruptDatasetError`` (or a user's own class) still catches what a reader raised,
    wherever it ran; a plain WorkerError when the class cannot take one message.

    >>> err = in_worker(KeyError("label"), "reading rows [3] failed: KeyError: 'label'")
    >>> isinstance(err, KeyError) and isinstance(err, WorkerError), type(err).__name__
    (True, 'KeyError')
    """
    try:
        cls: Any = type(exc)  # a class is hashable; mypy reads BaseException's __hash__ = None
        return _both(cls)(message)  # type: ignore[no-any-return]
    except TypeError:  # a layout conflict, or a constructor that wants more than a message
        return WorkerError(message)


class LoaderTimeoutError(LoaderError, TimeoutError):
    """A loader worker died or produced nothing within the timeout."""


class WorkbenchWarning(UserWarning):
    """Root of every warning workbench issues."""


class PerformanceWarning(WorkbenchWarning):
    """It works, but slower than it should: the message says what to change."""


class SharedMemoryWarning(PerformanceWarning):
    """``/dev/shm`` is too small for process workers' batches: the loader shrank what they hold
    there or read on threads; the message names the sizes and how to give it more."""


class MemoryBudgetWarning(WorkbenchWarning, ResourceWarning):
    """A setting or a read would exceed the memory budget; the message says by how much."""
