# %% [markdown]
# # 5. Tune the loader while the model trains
#
# `wb.tune(dataset, step)` trains `step(batch)` on a background thread and shows controls for
# every loader setting: batch size, workers and their type, read-ahead (`prefetch_factor`), pinned
# memory, shuffle order and the block order's window. A change applies at the next batch
# boundary through `Loader.reconfigure`, **without losing the epoch**: every row is still read
# exactly once (a new `shuffle` order waits for the next epoch). Each setting you hold becomes a
# row of the trials table (samples/s, MB/s, the consumer's wait fraction, peak memory);
# the fastest is in bold. The kernel stays free: other cells run while it tunes.
#
# **autotune** searches the same knobs one at a time (far fewer trials than a grid) under a
# memory budget it never crosses: the whole process tree's PSS above where it started, sampled
# ten times a second; a trial heading past the budget is cut, and settings with more worker
# processes than one that was cut are refused. It keeps your batch size and shuffle order (they
# change what the model learns) unless you pass `batch_sizes=`.

# %%
import time
from pathlib import Path

import torch

import workbench as wb

torch.manual_seed(0)
DATA = Path("nb_data")
raw = wb.make_demo(DATA / "raw", rows=100_000)
store = DATA / "tune.store"
wb.convert(
    raw.csv,
    store,
    target="label",
    sparse={"tokens": raw.sparse_dim},
    overwrite=True,
    progress=False,
)
ds = wb.open_dataset(store)

# %% [markdown]
# A small model and its real training step (forward, backward, optimizer step), and a per-batch
# augmentation that runs where the batch is read: in the training thread with `num_workers=0`,
# in the loader's threads otherwise. That is why the wait fraction falls as workers rise.

# %%
model = torch.nn.Sequential(
    torch.nn.Linear(16 + 1000, 64), torch.nn.ReLU(), torch.nn.Linear(64, raw.classes)
)
opt = torch.optim.SGD(model.parameters(), lr=0.05)
losses = []


def augment(batch, gen):
    noise = torch.randn(batch["features"].shape, generator=gen)
    for _ in range(20):  # a stand-in for real augmentation work, outside the GIL
        noise = torch.tanh(noise * 1.01)
    batch["x"] = torch.cat([batch["features"] + 0.01 * noise, batch["tokens"]], dim=1)
    return batch


def step(batch):
    loss = torch.nn.functional.cross_entropy(model(batch["x"]), batch["label"])
    opt.zero_grad()
    loss.backward()
    opt.step()
    losses.append(loss.item())


# %% [markdown]
# ## The panel
# Drag the sliders; each setting you hold for a moment gets a row in the table. *autotune* runs
# the search in this panel, *show code* prints the line that builds the best loader.

# %% tags=["nbval-ignore-output"]
tuner = wb.tune(
    ds, step, batch_size=256, num_workers=0, transform=augment, seed=0, memory_budget="2GiB"
)
tuner

# %% [markdown]
# The controls are widgets; code can move them too. Raise the workers and watch the wait
# fraction fall (here: a few seconds per setting).

# %% tags=["nbval-ignore-output"]
for n in (0, 1, 2):
    tuner.controls["num_workers"].value = n
    time.sleep(4)
for t in tuner.trials:
    c = t["config"]
    print(
        f"{c['num_workers']} {c['worker_type']:7s} {t['samples_per_s']:>9,.0f} samples/s  "
        f"wait {t['wait_fraction']:.2f}"
    )

# %% [markdown]
# ## autotune, in the same panel
# Trials appear in the table as they run; the loader then runs with the best setting.

# %% tags=["nbval-ignore-output"]
tuner.autotune(time_budget_s=20)
r = tuner.result
print(f"{len(r.trials)} trials in {r.seconds:.0f} s, {len(r.cut)} cut by the budget")
print(tuner.code_line())

# %% [markdown]
# The budget held: no trial's peak memory above it.

# %% tags=["nbval-check-output"]
print("every trial under the budget:", all(t.peak_bytes < r.memory_budget for t in r.trials))
print("trials:", "fewer than the grid" if len(r.trials) < 30 else "too many")
print("best is runnable:", set(r.best) >= {"batch_size", "num_workers", "worker_type"})

# %% [markdown]
# ## Train with the result
# `tuner.close()` ends the training thread and every reader; `tuner.loader()` builds a fresh
# loader over the same dataset with the best setting and your other options.

# %% tags=["nbval-check-output"]
tuner.close()
dl = tuner.loader()
rows = 0
for batch in dl:
    step(batch)
    rows += len(batch["label"])
print("one epoch with the tuned loader:", rows == len(ds), "| batch size", dl.batch_size)
print("the loss went down:", sum(losses[-50:]) / 50 < sum(losses[:50]) / 50)
dl.close()
