# %% [markdown]
# # 1. Convert raw data into fast on-disk layouts
#
# `workbench.convert` reads a source **chunk by chunk** (memory stays flat however big the input),
# optionally applies a per-chunk `transform` **once**, writes shards, and commits the dataset
# **atomically**: a conversion that fails or is killed never leaves a half-written dataset that
# opens.
#
# This notebook converts the built-in demo data from each input format: CSV, Parquet, HDF5 and
# `.npy`.

# %%
import textwrap
from pathlib import Path

import numpy as np

import workbench as wb

DATA = Path("nb_data")
raw = wb.make_demo(DATA / "raw", rows=20_000)  # dense features, integer label, sparse tokens
print(
    raw.rows,
    "rows;",
    raw.features,
    "features;",
    raw.classes,
    "classes;",
    "sparse width",
    raw.sparse_dim,
)
print(", ".join(sorted(p.name for p in raw.paths)))

# %% [markdown]
# ## CSV → sharded `.npy` store
# Numeric columns are packed into one `features` matrix, the `target` stays its own column, and the
# `tokens` column (space-separated nonzero indices) is stored as CSR. The progress bar is tqdm's
# meter, updated in place: the saved notebook shows where it finished.

# %% tags=["nbval-ignore-output"]
m = wb.convert(
    raw.csv, DATA / "demo.store", target="label", sparse={"tokens": raw.sparse_dim}, overwrite=True
)

# %% tags=["nbval-check-output"]
print(m.layout, m.num_rows)
for c in m.columns:
    print(f"  {c.name:8} {c.dtype:7} shape={list(c.shape)} sparse={c.sparse}")
print("target:", m.target, "| features from:", m.column("features").names[:4], "...")

# %% [markdown]
# The manifest is plain JSON beside the shards; `wb.info` prints it as a summary. Every shard is a
# standard `.npy` file: `np.load(shard, mmap_mode="r")` opens it with no workbench installed.

# %% tags=["nbval-ignore-output"]
print(wb.info(DATA / "demo.store"))

# %% tags=["nbval-check-output"]
version, manifest = wb.read_manifest(DATA / "demo.store")
shard0 = manifest.shards[0].files[0]
arr = np.load(version / shard0.path, mmap_mode="r", allow_pickle=False)
print(shard0.path, type(arr).__name__, arr.shape, arr.dtype)

# %% [markdown]
# ## Parquet → Parquet row groups, HDF5 → chunked HDF5, `.npy` → store
# The same call writes any of the three layouts (`format="store" | "hdf5" | "parquet"`).

# %% tags=["nbval-ignore-output"]
pq = wb.convert(
    raw.parquet,
    DATA / "demo.parquet.ds",
    format="parquet",
    target="label",
    sparse={"tokens": raw.sparse_dim},
    overwrite=True,
)
h5 = wb.convert(raw.hdf5, DATA / "demo.hdf5.ds", format="hdf5", target="label", overwrite=True)
npy = wb.convert(
    {"features": raw.npy, "label": raw.labels_npy},
    DATA / "npy.store",
    target="label",
    overwrite=True,
)

# %% tags=["nbval-check-output"]
for name, man in [("parquet", pq), ("hdf5", h5), ("npy", npy)]:
    print(f"{name:8} {man.layout:8} rows={man.num_rows} columns={[c.name for c in man.columns]}")

# %% [markdown]
# ## Verify
# `wb.verify` checks every file's size and xxh3 checksum plus the format's own checks
# (`.npy` headers, HDF5 fletcher32, Parquet page CRCs), and names every bad shard.

# %% tags=["nbval-check-output"]
for d in ["demo.store", "demo.parquet.ds", "demo.hdf5.ds", "npy.store"]:
    r = wb.verify(DATA / d)
    print(f"{d:16} ok={r.ok} shards={r.shards} files={r.files}")


# %% [markdown]
# ## A transform, paid once
# Expensive feature work runs at conversion time, per chunk of rows, instead of every epoch. Its
# output dtype and shape are checked chunk by chunk.

# %% tags=["nbval-ignore-output"]
def log_features(chunk):
    """Signed log1p of the features: tames their very different scales."""
    f = chunk["features"]
    return {**chunk, "features": (np.sign(f) * np.log1p(np.abs(f))).astype("float32")}


t = wb.convert(
    {"features": raw.npy, "label": raw.labels_npy},
    DATA / "log.store",
    transform=log_features,
    overwrite=True,
    progress=False,
)

# %% tags=["nbval-check-output"]
print(t.transform["name"], "-", t.transform["doc"])

# %% [markdown]
# ## Bad input gets a clear error, and nothing is committed

# %% tags=["nbval-check-output"]
bad = DATA / "bad.csv"
bad.write_text("a,b,city\n1,2,Paris\n3,4,Rome\n")
try:
    wb.convert(bad, DATA / "bad.store", progress=False)
except wb.InvalidInputError as e:
    print(textwrap.fill(f"{type(e).__name__}: {e}", width=96, subsequent_indent="    "))
print("committed:", (DATA / "bad.store" / "CURRENT").exists())

# %% [markdown]
# ## Parallel on Dask
# Given a `distributed.Client`, shards are converted as Dask tasks on its workers and one manifest
# is committed at the end. The local cluster binds only to 127.0.0.1.

# %% tags=["nbval-ignore-output"]
client = wb.local_client(2)
par = wb.convert(raw.npy, DATA / "dask.store", shard_bytes=256 << 10, client=client, overwrite=True)
print("Dask workers:", len(client.scheduler_info()["workers"]))

# %% tags=["nbval-check-output"]
serial = wb.convert(
    raw.npy, DATA / "serial.store", shard_bytes=256 << 10, overwrite=True, progress=False
)
print(
    len(par.shards),
    "shards; identical to the in-process run:",
    [s.files for s in par.shards] == [s.files for s in serial.shards],
)

# %%
wb.close_client(client)
