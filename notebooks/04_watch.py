# %% [markdown]
# # 4. Watch a loader: throughput, the memory of every process, page cache and GPU, live
#
# `wb.watch(loader)` draws live charts in the notebook from a background thread, so the cell
# that trains keeps running while they update: samples/s, MB/s, the share of time the consumer
# waits for data (near 1: input-bound; near 0: compute-bound), the memory of the kernel and of
# every loader worker process, the dataset's pages in the page cache, pinned memory and the GPU.
# Given a Dask `client`, the same samples reach our own pages of the Dask dashboard
# (`/individual-workbench-throughput`, `-memory`, `-gpu` and the combined `/workbench`).
#
# **Why PSS, not RSS.** RSS counts every page a process maps, so the dataset's page-cache pages,
# mapped by the kernel and by each worker, are counted once per process: with 2 workers the RSS
# sum over-counts them 3×. PSS splits each shared page between the processes that map it, so PSS
# adds up to what the machine really holds; its anonymous + shmem part is the memory that is not
# reclaimable page cache.

# %%
import textwrap
from collections import Counter
from pathlib import Path

import numpy as np

import workbench as wb

DATA = Path("nb_data")
rng = np.random.default_rng(0)
store = DATA / "watch.store"
wb.convert(
    {"x": rng.random((200_000, 64), dtype="float32"), "y": rng.integers(0, 10, 200_000)},
    store,
    overwrite=True,
    progress=False,
)
wb.evict(store)  # start cold: watch the page cache fill in as the loader reads
cold = wb.residency(store).fraction
print(f"{cold:.0%} of {store.name} is in the page cache")

# %% [markdown]
# ## A cluster whose dashboard has our pages
# `wb.local_client()` registers the workbench pages before its scheduler starts. With a scheduler
# of your own: `dask scheduler --preload workbench.dashboard`. In JupyterLab's Dask sidebar
# (dask-labextension), enter the dashboard address: the pages are listed as buttons.

# %% tags=["nbval-ignore-output"]
client = wb.local_client(1)
print("dashboard:", client.dashboard_link.replace("/status", "/workbench"))

# %% [markdown]
# ## Live charts while two worker processes read
# The charts update twice a second; this cell returns at once, the next one trains.

# %% tags=["nbval-ignore-output"]
ds = wb.open_dataset(store)
dl = wb.loader(
    ds,
    batch_size=1024,
    shuffle="block",
    num_workers=2,
    worker_type="process",
    persistent_workers=True,
    seed=0,
)
w = wb.watch(dl, client=client)
w

# %% [markdown]
# A stand-in for a training step: a little compute per batch, so the wait fraction is neither 0
# nor 1.

# %%
weights = np.random.default_rng(1).random((64, 64), dtype="float32")
rows = 0
w.monitor.sample()  # a reading before the first batch, however fast the epochs turn out
for epoch in range(3):
    for batch in dl:
        x = batch["x"].numpy()
        for _ in range(4):
            x = np.tanh(x @ weights)
        rows += len(x)
w.stop()  # stop drawing; the charts keep their last state

# %% [markdown]
# ## The same facts, to code
# `w.monitor` is the `wb.Monitor` behind the charts: `latest()`, `history()` and
# `to_prometheus()` for scrapers.

# %% tags=["nbval-check-output"]
latest, history = w.monitor.latest(), w.monitor.history()
kinds = Counter(p["name"].rsplit(" ", 1)[0] for p in latest["memory"]["processes"])
print("rows read:", rows)
print("processes watched:", dict(sorted(kinds.items())))
print("every process has a positive PSS:", all(p["pss"] > 0 for p in latest["memory"]["processes"]))
print("page cache filled as the loader read:", cold < 0.5 < wb.residency(store).fraction)
print("GPU:", "present" if latest["gpu"]["available"] else "none here")

# %% tags=["nbval-ignore-output"]
print(
    f"{np.median([v for _, v in history['samples_per_s'] if v]):,.0f} samples/s (median),",
    f"wait fraction {np.median([v for _, v in history['wait_fraction']]):.2f}",
)
print(
    "\n".join(
        line
        for line in w.monitor.to_prometheus().splitlines()
        if line.startswith("workbench_") and "bytes" in line
    )
)

# %% [markdown]
# ## Why is it slow: three loaders with a known cause
# The loader times each batch's stages where they run (choosing the rows, reading, the transform,
# collation, the hand-over, the copy to the device) beside the consumer's wait and its own step.
# `wb.bottleneck` turns them into a verdict: input- or compute-bound, the stage that dominates,
# the evidence, and the change that moves it (`verdict.change`, options for `reconfigure`).
# Three deliberately slow loaders: a pure-Python transform, tiny batches, and cold data (the
# files evicted from the page cache, read in a full shuffle).

# %%
def heavy(batch):
    """A per-row pure-Python transform: it holds the GIL for every row."""
    x = batch["x"]
    batch["norm"] = x.new_tensor([sum(v * v for v in row) ** 0.5 for row in x.tolist()])
    return batch


def consume(dl, batches=60):
    for k, batch in enumerate(dl):
        batch["x"].sum()
        if k + 1 == batches:
            break
    return wb.bottleneck(dl)


# a store no process maps yet: pages a process maps stay cached whatever evict asks
cold_store = DATA / "cold.store"
wb.convert(
    {"x": rng.random((400_000, 64), dtype="float32")}, cold_store, overwrite=True, progress=False
)
wb.evict(cold_store)
slow = {
    "a pure-Python transform": wb.loader(ds, batch_size=512, transform=heavy, num_workers=0),
    "tiny batches": wb.loader(ds, batch_size=8, num_workers=0),
    "cold data": wb.loader(wb.open_dataset(cold_store), batch_size=1024, shuffle="full"),
}
verdicts = {name: consume(loader) for name, loader in slow.items()}

# %% tags=["nbval-ignore-output"]
for name, v in verdicts.items():
    print(textwrap.fill(f"{name}: {v}", 96, subsequent_indent="    "), f"\n  change: {v.change}\n")

# %% [markdown]
# ## The fix, applied live with the tuner
# `wb.tune` trains on a background thread with the heavy transform; its chart shows where the
# time goes. `tuner.apply(**verdict.change)` reconfigures the running loader at the next batch
# (the controls follow), and the trials table shows the rate before and after, each with its own
# stage split.

# %% tags=["nbval-ignore-output"]
import time

tuner = wb.tune(ds, batch_size=512, num_workers=0, transform=heavy, seed=0)
time.sleep(4)
before = wb.bottleneck(tuner.watch.monitor)
tuner.apply(**before.change)
time.sleep(6)
tuner.pause()
tuner

# %% tags=["nbval-ignore-output"]
from workbench.tuning.trials import stage_text

for t in tuner.trials:
    c = t["config"]
    readers = f"{c['num_workers']} {c['worker_type']} workers" if c["num_workers"] else "in-process"
    went = stage_text(t["stages"])
    print(f"{t['samples_per_s']:>10,.0f} samples/s  {readers}; time goes to {went}")
tuner.close()

# %%
dl.close()
for loader in slow.values():
    loader.close()
wb.close_client(client)
