# %% [markdown]
# # 7. Mix: Zarr inputs, several datasets by weight, rows filtered at read time
#
# Three things a training set is often made of: arrays kept in Zarr (what Dask and xarray users
# write), several sources drawn in fixed proportions (`wb.mix`), and a subset of rows chosen by
# a condition on their columns (`open_dataset(..., where=...)`).

# %%
from pathlib import Path

import numpy as np
import torch
import zarr

import workbench as wb

torch.manual_seed(0)
DATA = Path("nb_data")
rng = np.random.default_rng(0)

# %% [markdown]
# ## A Zarr array: inspect it, then open or convert it
# A Zarr v3 array of 40,000 rows x 32 float32, in chunks of 4,000 rows, compressed. `wb.inspect`
# shows what Zarr stores (chunk grid, codecs, bytes stored against logical bytes) and what a
# loader should do with it; `wb.open_dataset` reads it in batches aligned to its chunks, and
# `wb.convert` writes it to our store, one chunk range per worker.

# %%
path = DATA / "features.zarr"
z = zarr.open_array(path, mode="w", shape=(40_000, 32), chunks=(4_000, 32), dtype="float32")
z[:] = rng.standard_normal((40_000, 32), dtype=np.float32)

# %% tags=["nbval-check-output"]
print(wb.inspect(str(path)))

# %%
zstore = DATA / "features.store"
wb.convert(str(path), zstore, overwrite=True, progress=False)
print(len(wb.open_dataset(str(path))), len(wb.open_dataset(zstore)))

# %% [markdown]
# ## Two sources, 70 / 30
# `wb.mix` draws each epoch's rows from several datasets by weight: 70 % from `common` and 30 %
# from `rare` here. The mixture is one dataset to the loader, so it keeps the seeded order, the
# rank split, resume and `reconfigure`. Its repr says what an epoch is: by default, until the
# source that runs out first is exhausted; `rare` has 3,000 rows, so an epoch is 10,000 rows.
# Each batch carries a `source` column (0 or 1).

# %%
common = wb.open_dataset(
    {"x": rng.standard_normal((50_000, 8), dtype=np.float32), "y": np.zeros(50_000, "int64")}
)
rare = wb.open_dataset(
    {"x": rng.standard_normal((3_000, 8), dtype=np.float32) + 2, "y": np.ones(3_000, "int64")}
)
mixed = wb.mix({"common": common, "rare": rare}, weights={"common": 0.7, "rare": 0.3})
mixed

# %% tags=["nbval-check-output"]
counts = torch.zeros(2, dtype=torch.long)
for batch in wb.loader(mixed, batch_size=500, shuffle="full", seed=0):
    counts += torch.bincount(batch["source"], minlength=2)
shares = ", ".join(f"{c / counts.sum():.1%}" for c in counts.tolist())
print(f"one epoch: {counts.tolist()} rows from (common, rare): {shares}")

# %% [markdown]
# ## A filtered subset, trained on
# `where=` keeps the rows a filter passes, evaluated once, a chunk at a time: pyarrow's
# `filters` form, or a callable on a batch. The loader's orders run over the kept rows.

# %% tags=["nbval-check-output"]
labels = rng.integers(0, 4, 20_000)
feats = (rng.standard_normal((20_000, 8)) + labels[:, None]).astype("float32")
wb.convert({"x": feats, "label": labels}, DATA / "labelled.store", overwrite=True, progress=False)
subset = wb.open_dataset(DATA / "labelled.store", where=("label", "in", [1, 3]))
kept = np.isin(labels, [1, 3]).sum()
print(f"{len(subset):,} rows kept ({subset.kept_fraction:.1%}); numpy keeps {kept:,}")

# %%
model = torch.nn.Linear(8, 2)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for epoch in range(2):
    for batch in wb.loader(subset, batch_size=256, shuffle="block", seed=epoch):
        target = (batch["label"] == 3).long()
        loss = torch.nn.functional.cross_entropy(model(batch["x"]), target)
        opt.zero_grad()
        loss.backward()
        opt.step()

# %% tags=["nbval-check-output"]
with torch.no_grad():
    b = subset.get_batch(range(len(subset)))
    acc = (model(b["x"]).argmax(1) == (b["label"] == 3).long()).float().mean().item()
print("accuracy on the subset above 0.9:", acc > 0.9)
