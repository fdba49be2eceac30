# %% [markdown]
# # 3. Explore a dataset before training on it
#
# `wb.inspect` shows any array or dataset the way its storage sees it: shape, dtype, bytes in memory
# and on disk, the storage's own read unit (a page of a memory map, an HDF5 chunk with its filters, a
# Parquet row group with its codec, a Dask chunk, a shard), which bytes sit in the page cache right
# now, and what a batch costs to read in each order. It reads metadata only. `wb.stats` and
# `wb.preview` look at the values; `wb.doctor` finds the pitfalls of a hand-written `Dataset`;
# `wb.advise` says which layout and loader settings suit this data on this machine.

# %%
from pathlib import Path

import dask.array as da
import h5py
import numpy as np

import workbench as wb

DATA = Path("nb_data")
raw = wb.make_demo(DATA / "raw", rows=20_000)
for layout in ("store", "hdf5", "parquet"):
    wb.convert(
        raw.csv,
        DATA / f"explore.{layout}",
        format=layout,
        target="label",
        sparse={"tokens": raw.sparse_dim},
        overwrite=True,
        progress=False,
    )

# %% [markdown]
# ## One look at each layout
# In JupyterLab an inspection is a table with a chunk grid per column and a strip per file showing
# what is in the page cache (dark: resident). `print` gives the same facts as text; so does
# `workbench inspect PATH` in a terminal.

# %% tags=["nbval-ignore-output"]
wb.inspect(DATA / "explore.hdf5", batch_size=1024)


# %% [markdown]
# The read unit decides what a shuffled batch costs. *Read amplification* is bytes decoded per byte
# used, for data larger than RAM: a memory map reads one 4 KiB page per row; an HDF5 chunk or a
# Parquet row group is decoded whole for any row in it. Block order reads each unit once per
# window, which is why it costs about 1x in every layout.

# %% tags=["nbval-check-output"]
def costs(obj, batch_size=1024):
    ins = wb.inspect(obj, batch_size=batch_size)
    for a in ins.arrays:
        amp = "  ".join(f"{o} {c.amplification:5.1f}x" for o, c in ins.costs[a.name].items())
        print(f"  {a.name:16} {a.unit:11} {a.unit_rows:>9,.0f} rows/unit   {amp}")


for layout in ("store", "hdf5", "parquet"):
    print(f"{layout} layout:")
    costs(DATA / f"explore.{layout}")

# %% [markdown]
# ## Raw files, memory maps and Dask arrays
# The same facts for what you have before converting: a `.npy` (and its memmap), an HDF5 file (a
# key, or an `h5py` object), a Dask array.

# %% tags=["nbval-check-output"]
with h5py.File(DATA / "raw" / "chunky.h5", "w") as f:
    f.create_dataset("x", data=np.load(raw.npy), chunks=(256, 16), compression="gzip")
print("memmap:")
costs(np.load(raw.npy, mmap_mode="r"))
print("HDF5, gzip chunks of 256 rows:")
costs(f"{DATA / 'raw' / 'chunky.h5'}:x")
print("Dask array, chunks of 5,000 rows:")
costs(da.from_array(np.load(raw.npy), chunks=(5000, 16)))

# %% [markdown]
# ## The page cache, seen and controlled
# `wb.residency` measures it with `mincore(2)`, `wb.evict` drops a dataset's pages (cold reads can
# then be measured), `wb.warm` asks the kernel to read them ahead.

# %% tags=["nbval-check-output"]
store = DATA / "explore.store"
wb.evict(store)
print(f"after evict: {'cold' if wb.residency(store).fraction < 0.1 else 'still cached'}")
wb.warm(store)
for _ in wb.loader(wb.open_dataset(store), batch_size=4096, shuffle="sequential"):
    pass
print(
    f"after warm and one epoch: {'warm' if wb.residency(store).fraction > 0.9 else 'partly cold'}"
)

# %% tags=["nbval-ignore-output"]
wb.inspect(store)

# %% [markdown]
# ## Statistics and a preview
# One pass, chunk by chunk, with memory bounded by a chunk and the quantile sample. Quantiles and
# histograms come from a uniform sample of up to 100,000 rows (exact below that).

# %% tags=["nbval-check-output"]
s = wb.stats(store)
print(s)

# %% tags=["nbval-ignore-output"]
s

# %% [markdown]
# Rows that are images are drawn as thumbnails; here, 8x8 glyphs (a stand-in for the digits).

# %% tags=["nbval-check-output"]
glyphs = np.zeros((6, 8, 8), "float32")
glyphs[0, 1:7, [1, 6]] = glyphs[0, [1, 6], 1:7] = 1  # a square
glyphs[1, 3:5, :] = glyphs[1, :, 3:5] = 1  # a cross
glyphs[2][np.eye(8, dtype=bool) | np.eye(8, dtype=bool)[::-1]] = 1  # an X
glyphs[3, :, 3:5] = 1  # a bar
glyphs[4] = np.tri(8)  # a triangle
glyphs[5] = np.indices((8, 8)).sum(0) % 2  # a checkerboard
p = wb.preview({"image": glyphs, "label": np.arange(6)}, n=6)
print(p.kinds)

# %% tags=["nbval-ignore-output"]
p

# %% tags=["nbval-check-output"]
print(wb.preview(store, n=3))

# %% [markdown]
# ## The doctor: the naive pitfalls, found and explained
# The Dataset classes of the articles this project grew from, as they wrote them: seed 000's
# `HDF5Dataset` (the file opened in `__init__`, before the workers fork; one row per read) and seed
# 001's `SimpleDataset` (every row a Python object in a list). `wb.doctor` inspects what a Dataset
# holds and how it is driven, measures one item against a batched read, and gives each finding one
# line of workbench code that fixes it.

# %%
import torch
from torch.utils.data import DataLoader, Dataset


class HDF5Dataset(Dataset):
    def __init__(self, hdf5_path, data_key, target_key):
        self.file = h5py.File(hdf5_path, "r")
        self.data = self.file[data_key]
        self.targets = self.file[target_key]

    def __len__(self):
        return len(self.data)

    def __getitem__(self, idx):
        data = torch.tensor(self.data[idx])
        target = torch.tensor(self.targets[idx])
        return data, target

    def __del__(self):
        self.file.close()


class SimpleDataset(Dataset):
    def __init__(self, features, targets):
        self.features = [torch.as_tensor(f) for f in features]
        self.targets = targets

    def __len__(self):
        return len(self.features)

    def __getitem__(self, idx):
        return self.features[idx], self.targets[idx]


# %% tags=["nbval-check-output"]
seed_loader = DataLoader(
    HDF5Dataset(raw.hdf5, "features", "label"), batch_size=32, shuffle=True, num_workers=2
)
print(wb.doctor(seed_loader, measure=False).ids)
simple = SimpleDataset(np.load(raw.npy), np.load(raw.labels_npy).tolist())
print(wb.doctor(DataLoader(simple, batch_size=32, num_workers=2), measure=False).ids)
ours = wb.loader(wb.open_dataset(store), batch_size=1024, shuffle="block")
print("our loader:", wb.doctor(ours).ids)

# %% tags=["nbval-ignore-output"]
wb.doctor(seed_loader)

# %% [markdown]
# ## Advice for this data on this machine
# `wb.advise` turns the facts into a layout, a shuffle order and loader settings, each with its
# reason and a line of code, backed by a short measurement. Here for the chunky HDF5 file, planning
# for a page cache smaller than the data (as when the data is larger than RAM):

# %% tags=["nbval-check-output"]
a = wb.advise(
    f"{DATA / 'raw' / 'chunky.h5'}:x",
    batch_size=1024,
    shuffle="full",
    ram_bytes=1 << 20,
    measure=False,
)
print(a)

# %% tags=["nbval-ignore-output"]
wb.advise(raw.hdf5, batch_size=1024)
