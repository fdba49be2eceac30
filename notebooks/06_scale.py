# %% [markdown]
# # 6. Scale: a Dask cluster, shards streamed past the local disk, data-parallel ranks
#
# Three ways a dataset outgrows one process: convert it on a Dask cluster, read it from a server
# through a bounded local cache, and train on several ranks with `torchrun`.

# %%
import functools
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np

import workbench as wb

DATA = Path("nb_data")
raw = wb.make_demo(DATA / "raw", rows=20_000)

# %% [markdown]
# ## Conversion on a Dask cluster
# Given a client, shards are written by the cluster's workers and one manifest is committed at the
# end, atomically. `wb.local_client` binds 127.0.0.1 only, and its dashboard has our pages
# (`/individual-workbench-memory`, `-throughput`, `-gpu`; see notebook 4).

# %% tags=["nbval-ignore-output"]
client = wb.local_client(2)
print("dashboard:", client.dashboard_link)
m = wb.convert(
    raw.csv,
    DATA / "scale.store",
    target="label",
    sparse={"tokens": raw.sparse_dim},
    shard_bytes=256 << 10,
    client=client,
    overwrite=True,
    progress=False,
)
wb.close_client(client)

# %% tags=["nbval-check-output"]
print(f"{m.num_rows:,} rows in {len(m.shards)} shards, written by the cluster's workers")


# %% [markdown]
# ## Streaming from a server, through a bounded cache
# A real HTTP server on 127.0.0.1 serves the dataset folder. `open_dataset(url, cache_dir=...,
# cache_bytes=...)` reads the manifest from it and fetches each shard when a batch first needs
# it, checks it against the manifest's digests, and keeps at most `cache_bytes` on disk.
# `shuffle="shard"` permutes whole shards and mixes rows within a window of a few, so each shard is
# fetched once per epoch.

# %%
class Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args):  # a server thread that prints lands in whichever cell runs
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(DATA)))
threading.Thread(target=server.serve_forever, daemon=True).start()
url = f"http://127.0.0.1:{server.server_address[1]}/scale.store"

version, manifest = wb.read_manifest(DATA / "scale.store")
shard_bytes = [sum(f.bytes for f in s.files) for s in manifest.shards]
total = sum(shard_bytes)
cache_bytes = 5 * max(shard_bytes)  # the shards one window of 2 touches, and one to spare
ds = wb.open_dataset(url, cache_dir=DATA / "cache", cache_bytes=cache_bytes)


# %% tags=["nbval-check-output"]
def on_disk(folder):
    total = 0
    for f in Path(folder).rglob("*"):
        try:  # the fetch-ahead thread may evict or rename a file between the listing and its stat
            total += f.stat().st_size if f.is_file() else 0
        except FileNotFoundError:
            continue
    return total


rows, peak = 0, 0
for batch in wb.loader(ds, batch_size=512, shuffle="shard", window=2, num_workers=0, seed=0):
    rows += len(batch["label"])
    peak = max(peak, on_disk(ds.cache.local))
print(f"rows read: {rows:,} of {len(ds):,}")
print(f"shards fetched: {ds.cache.fetches} of {len(manifest.shards)} (each once)")
print(
    f"cache on disk never above the bound: {peak <= cache_bytes}"
    f" ({cache_bytes / total:.0%} of the dataset)"
)

# %% [markdown]
# `wb.publish(local, url)` (or `workbench publish LOCAL URL`) uploads a dataset to any writable
# fsspec location: shards first, then the manifest, then `CURRENT`, so readers never see half of it.

# %% tags=["nbval-check-output"]
wb.publish(DATA / "scale.store", "file://" + str((DATA / "published.store").resolve()))
copy = wb.open_dataset(
    f"http://127.0.0.1:{server.server_address[1]}/published.store",
    cache_dir=DATA / "cache2",
    cache_bytes=cache_bytes,
)
print(
    "published copy reads the same rows:",
    copy.get_batch([0, 7, 19_999])["label"].tolist()
    == wb.open_dataset(DATA / "scale.store").get_batch([0, 7, 19_999])["label"].tolist(),
)
server.shutdown()

# %% [markdown]
# ## Data-parallel ranks
# Inside a `torchrun` job, `wb.loader` takes the rank and world size from the process group, so
# each rank reads a disjoint share of every epoch. The example trains with DDP on CPU (gloo) and
# checkpoints each rank's `loader.state_dict()` beside the model; resume is exact, and elastic: a
# checkpoint taken at world size 2 resumes at 1 (or 1 at 2), each remaining row read once.
#
# ```bash
# torchrun --standalone --nproc_per_node=2 examples/ddp_train.py --data nb_data/scale.store
# ```
# The same split, shown here with explicit ranks, and an elastic resume from 2 ranks to 1:

# %% tags=["nbval-check-output"]
ids = wb.open_dataset({"id": np.arange(20_000)})  # each row's own index, to check coverage
ranks = [
    wb.loader(ids, batch_size=500, shuffle="full", seed=1, rank=r, world_size=2, num_workers=0)
    for r in (0, 1)
]
its = [iter(dl) for dl in ranks]
head = [next(it)["id"] for it in its for _ in range(8)]
print(
    "the two ranks' rows are disjoint:",
    not set(np.concatenate(head[:8]).tolist()) & set(np.concatenate(head[8:]).tolist()),
)
alone = wb.loader(ids, batch_size=500, shuffle="full", seed=1, num_workers=0)
alone.load_state_dict(ranks[0].state_dict())  # saved at world size 2, resumed at 1
rest = [b["id"] for b in alone]
seen = np.concatenate(head + rest)
once = np.array_equal(np.sort(seen), np.arange(20_000))
print(
    f"2 ranks read {sum(len(b) for b in head):,} rows, then 1 rank the other "
    f"{sum(len(b) for b in rest):,}; every row once: {once}"
)
