"""Run by tests/test_shm.py inside a private mount namespace whose /dev/shm is a small tmpfs.
Each argument is a case, ``kind:rows:batch_size:prefetch_factor:epochs`` (kind ``ours``: an
in-memory workbench dataset of 1 KiB rows; ``foreign``: a torch Dataset of them, whose batch size
the loader cannot know before a worker reads one; ``ragged``: rows of about 4 KiB, of different
lengths, batched as lists); a loader with 2 process workers reads it, and
what happened prints as one JSON line a case."""

from __future__ import annotations

import gc
import json
import os
import sys
import warnings

import numpy as np
import torch

import workbench as wb


class Rows(torch.utils.data.Dataset):
    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict:
        return {"x": torch.ones(255), "i": i}


class Ragged(Rows):
    """Rows of different lengths, batched as a list: no slot ring holds them, so the batches
    travel torch's own way (their tensors moved to /dev/shm as they are sent)."""

    def __getitem__(self, i: int) -> dict:
        return {"x": torch.ones(1024 + i % 7), "i": i}


def ragged(items: list[dict]) -> dict:
    return {"x": [r["x"] for r in items], "i": torch.tensor([r["i"] for r in items])}


def case(kind: str, rows: int, batch_size: int, prefetch: int, epochs: int) -> dict:
    if kind == "ours":
        ds = wb.open_dataset({"x": np.ones((rows, 255), "float32"), "i": np.arange(rows)})
    else:
        ds = Rows(rows) if kind == "foreign" else Ragged(rows)
    before = sorted(os.listdir("/dev/shm"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dl = wb.loader(
            ds,
            batch_size=batch_size,
            shuffle="full",
            seed=3,
            num_workers=2,
            worker_type="process",
            prefetch_factor=prefetch or None,
            persistent_workers=epochs > 1,
            collate_fn=ragged if kind == "ragged" else None,
            timeout=60,
        )
        once, pids = [], set()
        for _ in range(epochs):
            seen = []
            for batch in dl:
                seen.append(batch["i"].numpy().copy())
                pids.update(dl.worker_pids())
                del batch
            got = np.sort(np.concatenate(seen))
            once.append(bool(len(got) == rows and (got == np.arange(rows)).all()))
        state, shown = dl._feed.kept.shm, repr(dl)
        said = [f"{w.category.__name__}: {w.message}" for w in caught]
        dl.close()
    del dl, caught
    gc.collect()
    st = os.statvfs("/dev/shm")
    return {
        "rows_once": once,
        "processes": len(pids),
        "warnings": said,
        "state": state,
        "repr": shown,
        "shm_before": before,
        "shm_after": sorted(os.listdir("/dev/shm")),
        "free_after": st.f_bavail * st.f_frsize,
        "size": st.f_blocks * st.f_frsize,
    }


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        kind, *numbers = arg.split(":")
        print(json.dumps(case(kind, *(int(n) for n in numbers))), flush=True)
