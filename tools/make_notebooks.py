"""Write the numbered notebooks from the cell lists below (then `jupyter nbconvert --execute`).

Keeping the source here makes review diffs readable; the .ipynb files carry the executed outputs
that nbval compares for cells marked ``# NBVAL_CHECK_OUTPUT``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

NB = Path(__file__).resolve().parent.parent / "notebooks"


def md(text: str) -> nbformat.NotebookNode:
    return new_markdown_cell(text.strip())


def code(text: str) -> nbformat.NotebookNode:
    return new_code_cell(text.strip())


CONVERT = [
    md("""
# 1. Convert raw data into fast on-disk layouts

`workbench.convert` reads a source **chunk by chunk** (memory stays flat however big the input),
optionally applies a per-chunk `transform` **once**, writes shards, and commits the dataset
**atomically**: a conversion that fails or is killed never leaves a half-written dataset that opens.

This notebook converts the built-in demo data from each input format: CSV, Parquet, HDF5 and `.npy`.
"""),
    code("""
from pathlib import Path
import numpy as np
import workbench as wb
from workbench.demo import make_demo

DATA = Path("nb_data")
raw = make_demo(DATA / "raw", rows=20_000)   # dense features, integer label, sparse tokens
print(raw.rows, "rows;", raw.features, "features;", raw.classes, "classes; sparse width", raw.sparse_dim)
print(sorted(p.name for p in raw.paths))
"""),
    md("""
## CSV → sharded `.npy` store
Numeric columns are packed into one `features` matrix, the `target` stays its own column, and the
`tokens` column (space-separated nonzero indices) is stored as CSR. The progress bar is tqdm's
notebook flavour.
"""),
    code("""
# NBVAL_IGNORE_OUTPUT
m = wb.convert(raw.csv, DATA / "demo.store", target="label", sparse={"tokens": raw.sparse_dim},
               overwrite=True)
m
"""),
    code("""
# NBVAL_CHECK_OUTPUT
print(m.layout, m.num_rows, [(c.name, c.dtype, list(c.shape), c.sparse) for c in m.columns])
print("target:", m.target, "| features from:", m.column("features").names[:4], "...")
"""),
    md("""
The manifest is plain JSON beside the shards; `wb.info` prints it as a summary. Every shard is a
standard `.npy` file: `np.load(shard, mmap_mode="r")` opens it with no workbench installed.
"""),
    code("""
# NBVAL_IGNORE_OUTPUT
print(wb.info(DATA / "demo.store"))
"""),
    code("""
# NBVAL_CHECK_OUTPUT
version, manifest = wb.read_manifest(DATA / "demo.store")
shard0 = manifest.shards[0].files[0]
arr = np.load(version / shard0.path, mmap_mode="r", allow_pickle=False)
print(shard0.path, type(arr).__name__, arr.shape, arr.dtype)
"""),
    md("""
## Parquet → Parquet row groups, HDF5 → chunked HDF5, `.npy` → store
The same call writes any of the three layouts (`format="store" | "hdf5" | "parquet"`).
"""),
    code("""
# NBVAL_IGNORE_OUTPUT
pq = wb.convert(raw.parquet, DATA / "demo.parquet.ds", format="parquet", target="label",
                sparse={"tokens": raw.sparse_dim}, overwrite=True)
h5 = wb.convert(raw.hdf5, DATA / "demo.hdf5.ds", format="hdf5", target="label", overwrite=True)
npy = wb.convert({"features": raw.npy, "label": raw.labels_npy}, DATA / "npy.store",
                 target="label", overwrite=True)
"""),
    code("""
# NBVAL_CHECK_OUTPUT
for name, man in [("parquet", pq), ("hdf5", h5), ("npy", npy)]:
    print(f"{name:8} {man.layout:8} rows={man.num_rows} columns={[c.name for c in man.columns]}")
"""),
    md("""
## Verify
`wb.verify` checks every file's size and xxh3 checksum plus the format's own checks
(`.npy` headers, HDF5 fletcher32, Parquet page CRCs), and names every bad shard.
"""),
    code("""
# NBVAL_CHECK_OUTPUT
for d in ["demo.store", "demo.parquet.ds", "demo.hdf5.ds", "npy.store"]:
    r = wb.verify(DATA / d)
    print(f"{d:16} ok={r.ok} shards={r.shards} files={r.files}")
"""),
    md("""
## A transform, paid once
Expensive feature work runs at conversion time, per chunk of rows, instead of every epoch. Its output
dtype and shape are checked chunk by chunk.
"""),
    code("""
def log_features(chunk):
    \"\"\"Signed log1p of the features: tames their very different scales.\"\"\"
    f = chunk["features"]
    return {**chunk, "features": (np.sign(f) * np.log1p(np.abs(f))).astype("float32")}

# NBVAL_IGNORE_OUTPUT
t = wb.convert({"features": raw.npy, "label": raw.labels_npy}, DATA / "log.store",
               transform=log_features, overwrite=True, progress=False)
"""),
    code("""
# NBVAL_CHECK_OUTPUT
print(t.transform["name"], "-", t.transform["doc"])
"""),
    md("""
## Bad input gets a clear error, and nothing is committed
"""),
    code("""
# NBVAL_CHECK_OUTPUT
bad = DATA / "bad.csv"
bad.write_text("a,b,city\\n1,2,Paris\\n3,4,Rome\\n")
try:
    wb.convert(bad, DATA / "bad.store", progress=False)
except wb.InvalidInputError as e:
    print(type(e).__name__, ":", e)
print("committed:", (DATA / "bad.store" / "CURRENT").exists())
"""),
    md("""
## Parallel on Dask
Given a `distributed.Client`, shards are converted as Dask tasks on its workers and one manifest is
committed at the end. The local cluster binds only to 127.0.0.1.
"""),
    code("""
# NBVAL_IGNORE_OUTPUT
client = wb.local_client(2)
par = wb.convert(raw.npy, DATA / "dask.store", shard_bytes=256 << 10, client=client, overwrite=True)
client.dashboard_link
"""),
    code("""
# NBVAL_CHECK_OUTPUT
serial = wb.convert(raw.npy, DATA / "serial.store", shard_bytes=256 << 10, overwrite=True, progress=False)
print(len(par.shards), "shards; identical to the in-process run:",
      [s.files for s in par.shards] == [s.files for s in serial.shards])
"""),
    code("""
from workbench.cluster import close_client
close_client(client)
"""),
]


LOAD = [
    md("""
# 2. Load datasets fast: batched reads, good shuffling, bounded memory

`workbench.open_dataset` gives a map-style PyTorch `Dataset` over any converted layout (and over raw
`.npy`, HDF5, Parquet, NumPy and Dask arrays). It reads a **whole batch in one pass** (`__getitems__`:
sorted, coalesced range reads; zero-copy for contiguous memmap batches). `workbench.loader` wires a
seeded sampler (`sequential`, `full`, or chunk-aligned `block` shuffle) as a batch sampler, prefetches
in threads (worker processes optional), and surfaces worker failures within a finite timeout.
"""),
    code("""
from pathlib import Path
import numpy as np
import torch
import workbench as wb
from workbench.demo import make_demo

torch.manual_seed(0)
DATA = Path("nb_data")
raw = make_demo(DATA / "raw", rows=20_000)
store = DATA / "load.store"
wb.convert(raw.csv, store, target="label", sparse={"tokens": raw.sparse_dim}, overwrite=True, progress=False)
wb.convert(raw.parquet, DATA / "load.parquet.ds", format="parquet", target="label",
           sparse={"tokens": raw.sparse_dim}, overwrite=True, progress=False)
wb.convert(raw.hdf5, DATA / "load.hdf5.ds", format="hdf5", target="label", overwrite=True, progress=False);
"""),
    md("""
## Open each format; a batch is a dict of stacked tensors
"""),
    code("""
# NBVAL_CHECK_OUTPUT
sources = {
    "store": store,
    "parquet layout": DATA / "load.parquet.ds",
    "hdf5 layout": DATA / "load.hdf5.ds",
    "raw .npy": raw.npy,
    "raw HDF5": raw.hdf5,
    "raw Parquet": raw.parquet,
}
for name, src in sources.items():
    kw = {"sparse_dims": {"tokens": raw.sparse_dim}} if name == "raw Parquet" else {}
    ds = wb.open_dataset(src, **kw)
    batch = ds.__getitems__(list(range(8)))
    shapes = {k: (tuple(v.shape), str(v.dtype).replace("torch.", "")) for k, v in batch.items()}
    print(f"{name:15} rows={len(ds):>6}  {shapes}")
"""),
    md("""
## Rows equal the source, in every order
"""),
    code("""
# NBVAL_CHECK_OUTPUT
ds = wb.open_dataset(store)
features = np.load(raw.npy)
for order in ["sequential", "block", "full"]:
    seen = 0
    with wb.loader(ds, batch_size=1024, shuffle=order, seed=0) as dl:
        for b in dl:
            seen += len(b["label"])
    print(f"{order:10} batches={len(dl)} rows seen={seen}")
batch = ds.__getitems__([5, 3, 17])
print("rows match source:", np.array_equal(batch["features"].numpy(), features[[5, 3, 17]]))
"""),
    md("""
## Sparse rows expand in the batch, vectorised
The `tokens` column is stored as CSR; `sparse="dense"` (default) expands a batch into a dense
`(batch, 1000)` tensor in one scatter, `sparse="coo"`/`"csr"` gives `torch.sparse` tensors.
"""),
    code("""
# NBVAL_CHECK_OUTPUT
dense = wb.open_dataset(store, columns=["tokens"]).__getitems__([0, 1, 2])["tokens"]
coo = wb.open_dataset(store, columns=["tokens"], sparse="coo").__getitems__([0, 1, 2])["tokens"]
indptr, indices = np.load(raw.tokens_indptr_npy), np.load(raw.tokens_indices_npy)
print(dense.shape, dense.dtype, coo.layout)
print("row 0 nonzeros:", indices[indptr[0]:indptr[1]].tolist() == torch.nonzero(dense[0]).flatten().tolist())
print("coo == dense:", torch.equal(coo.to_dense(), dense))
"""),
    md("""
## Train a tiny model a few steps
Features, sparse tokens and the label come straight from the loader.
"""),
    code("""
model = torch.nn.Sequential(torch.nn.Linear(16 + raw.sparse_dim, 64), torch.nn.ReLU(),
                            torch.nn.Linear(64, raw.classes))
opt = torch.optim.Adam(model.parameters(), lr=1e-2)
ds = wb.open_dataset(store)
mean, std = features.mean(0), features.std(0)
losses = []
with wb.loader(ds, batch_size=512, shuffle="block", seed=0) as dl:
    for epoch in range(3):
        for b in dl:
            x = torch.cat([(b["features"] - torch.from_numpy(mean)) / torch.from_numpy(std), b["tokens"]], 1)
            loss = torch.nn.functional.cross_entropy(model(x), b["label"])
            opt.zero_grad(); loss.backward(); opt.step()
            losses.append(loss.item())
"""),
    code("""
# NBVAL_CHECK_OUTPUT
print(f"{len(losses)} steps; loss fell by more than half: {losses[-1] < 0.5 * losses[0]}")
"""),
    md("""
## Throughput next to this machine's limits
Each reader's batches are consumed the same way (a sum over every tensor). The limits: zero-copy
sequential memmap slices (contiguous batches) and memcpy (any gather). Figures vary by machine.
"""),
    code("""
# NBVAL_IGNORE_OUTPUT
from workbench.throughput import measure, memcpy_mb_per_s, sequential_mb_per_s
version, m = wb.read_manifest(store)
arr = np.load(version / m.shards[0].files[0].path, mmap_mode="r")
ds = wb.open_dataset(store, columns=["features"])
seq = sequential_mb_per_s(arr, 1024, max_seconds=1)
rows = [("limit: zero-copy sequential", seq.mb_per_s, 1.0), ("limit: memcpy", memcpy_mb_per_s(), 1.0)]
def epochs(dl):
    while True:
        yield from dl
for order, limit in [("sequential", rows[0][1]), ("block", rows[1][1]), ("full", rows[1][1])]:
    with wb.loader(ds, batch_size=1024, shuffle=order) as dl:
        t = measure(epochs(dl), max_seconds=1)
    rows.append((f"loader shuffle={order}", t.mb_per_s, t.mb_per_s / limit))
print(f"{'reader':30}{'MB/s':>10}{'x limit':>9}")
for name, mbs, ratio in rows:
    print(f"{name:30}{mbs:>10,.0f}{ratio:>9.2f}")
"""),
    md("""
## Worker processes, resume, and a Dask view
`worker_type="process"` runs a real `torch.utils.data.DataLoader` with the sampler as batch sampler
(h5py handles open lazily per process). `state_dict()` resumes mid-epoch exactly. `wb.as_dask` gives
a store column as a lazy Dask array over its memmapped shards.
"""),
    code("""
# NBVAL_CHECK_OUTPUT
h5 = wb.open_dataset(DATA / "load.hdf5.ds", columns=["features", "label"])
with wb.loader(h5, batch_size=2048, shuffle="full", num_workers=2, worker_type="process") as dl:
    n = sum(len(b["label"]) for b in dl)
print("rows through 2 worker processes:", n)

dl = wb.loader(ds, batch_size=1000, shuffle="full", seed=3)
it = iter(dl); first = [next(it)["features"] for _ in range(4)]; state = dl.state_dict(); dl.close()
again = wb.loader(ds, batch_size=1000, shuffle="full", seed=3); again.load_state_dict(state)
rest = [b["features"] for b in again]; again.close()
full = [b["features"] for b in wb.loader(ds, batch_size=1000, shuffle="full", seed=3)]
print("resumed epoch equals uninterrupted:", all(torch.equal(a, b) for a, b in zip(first + rest, full)))

x = wb.as_dask(store, "features")
print(type(x).__name__, x.shape, x.dtype, "| column means match:", np.allclose(x.mean(0).compute(), mean, rtol=1e-4))
"""),
]

NOTEBOOKS = {"01_convert.ipynb": CONVERT, "02_load.ipynb": LOAD}


def main(names: list[str]) -> None:
    for name, cells in NOTEBOOKS.items():
        if names and name not in names:
            continue
        nb = new_notebook(cells=cells)
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nbformat.write(nb, NB / name)
        print("wrote", NB / name)


if __name__ == "__main__":
    main(sys.argv[1:])
