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

NOTEBOOKS = {"01_convert.ipynb": CONVERT}


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
