"""The fault matrix (docs/RELIABILITY.md): what each failure raises, and that nothing is lost.

Here: a dataset's own error reaches the consumer as its own class (and as a WorkerError) with the
rows, the batch and where it ran, for every worker type, as torch's DataLoader re-raises a
worker's exception as its class.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import workbench as wb
from workbench.errors import CorruptDatasetError, WorkerError, in_worker


class ShardGone(Exception):
    """A user's own error class, with nothing of ours in it."""


class Failing(torch.utils.data.Dataset):
    """Rows 0..n-1; reading row ``bad`` raises ``error``."""

    def __init__(self, error: BaseException, n: int = 64, bad: int = 40):
        self.error, self.n, self.bad = error, n, bad

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict:
        if i == self.bad:
            raise self.error
        return {"x": torch.tensor([float(i)])}


ERRORS = [
    CorruptDatasetError("shard 3: size 10 != 12 in the manifest"),
    ShardGone("the shard went away"),
    KeyError("label"),
]
READERS = [(0, "thread"), (2, "thread"), (2, "process")]


@pytest.mark.parametrize("error", ERRORS, ids=lambda e: type(e).__name__)
@pytest.mark.parametrize("workers,worker_type", READERS, ids=lambda x: str(x))
def test_a_datasets_error_keeps_its_class_through_the_loader(error, workers, worker_type):
    dl = wb.loader(
        Failing(error),
        batch_size=8,
        shuffle=False,
        num_workers=workers,
        worker_type=worker_type,
    )
    with pytest.raises(type(error)) as got:
        for _ in dl:
            pass
    dl.close()
    assert isinstance(got.value, WorkerError) and type(got.value).__name__ == type(error).__name__
    text = str(got.value)
    assert "rows [40," in text or "40" in text, text  # the failing batch's rows
    where = "main process" if workers == 0 else worker_type
    assert where in text, text
    if workers == 0 or worker_type == "thread":
        assert "batch 5 of epoch 0" in text, text
    assert str(error).strip("'") in text


def test_a_class_that_cannot_take_one_message_falls_back_to_worker_error():
    class Picky(Exception):
        def __init__(self, a: int, b: int):
            super().__init__(a, b)

    err = in_worker(Picky(1, 2), "reading rows [1] failed")
    assert type(err) is WorkerError and str(err) == "reading rows [1] failed"


def test_a_transforms_error_keeps_its_class_too():
    def transform(batch):
        raise ShardGone("no labels here")

    ds = wb.open_dataset({"x": np.zeros((32, 2), np.float32)})
    dl = wb.loader(ds, batch_size=8, num_workers=0, transform=transform)
    with pytest.raises(ShardGone, match="transform .* raised on batch 0 of epoch 0"):
        next(iter(dl))
    dl.close()


def test_the_kept_class_survives_pickle_as_a_worker_process_sends_it():
    import pickle

    err = in_worker(CorruptDatasetError("x"), "reading rows [1] failed in a worker process")
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is type(err) and isinstance(back, CorruptDatasetError)
    assert str(back) == str(err)
