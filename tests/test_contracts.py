"""Parts that talk through contracts: read from the code, no module reaches into another
object's ``_private`` attributes (``x._name`` where ``x`` is not ``self``/``cls``, one of the
module's own classes or an instance that class code of the module is building), nor imports
another module's private names; the few left are listed below, each with its reason. And the
optional dataset capabilities of ``workbench/datasets/protocols.py``: each of our dataset classes
has exactly those that docs/CONTRACTS.md says it has, and a plain torch Dataset has none of them
and still loads."""

from __future__ import annotations

import ast
import os
import re
from pathlib import Path

import numpy as np
import pytest
import torch

import workbench
import workbench as wb
from workbench.datasets import protocols
from workbench.loading.fetch import Capabilities

PKG = Path(workbench.__file__).parent
DOC = PKG.parent / "docs" / "CONTRACTS.md"

# Private by their spelling, public by their library's documentation: namedtuple's API
# (underscored so as not to clash with field names) and Jupyter's rich display protocol.
PUBLIC_BY_PROTOCOL = {"_fields", "_asdict", "_replace", "_make", "_field_defaults"}
DISPLAY = re.compile(r"^_(repr_[a-z_]+|ipython_[a-z_]+)_$")

TORCH_WORKERS = (
    "torch's DataLoader worker iterator has no public API for what the loader's own "
    "worker pool needs; confined to workbench/loading/workers/"
)
# (module, private name) -> why it stays
ALLOWED = {
    ("loading/workers/pool.py", "_MultiProcessingDataLoaderIter"): TORCH_WORKERS
    + ": subclassed to notice dead workers by polling, not by SIGCHLD",
    ("loading/workers/pool.py", "_utils"): TORCH_WORKERS
    + ": its status-check interval and signal registry",
    ("loading/workers/pool.py", "_remove_worker_pids"): TORCH_WORKERS
    + ": our workers leave torch's SIGCHLD registry before the first index",
    ("loading/workers/pool.py", "_profiler_enabled"): TORCH_WORKERS
    + ": __next__ skips the profiler range (57 us a batch) unless a profiler runs",
    ("loading/workers/ranges.py", "_is_profiler_enabled"): TORCH_WORKERS
    + ": whether any thread runs torch's profiler (torch.autograd._profiler_enabled() is "
    "thread-local), read once a batch",
    ("loading/workers/pool.py", "_iterator"): TORCH_WORKERS
    + ": a persistent DataLoader's live iterator, to stop or list kept workers",
    ("loading/workers/pool.py", "_workers"): TORCH_WORKERS
    + ": the worker processes, for their pids and exit codes",
    ("loading/workers/pool.py", "_shutdown_workers"): TORCH_WORKERS
    + ": the one way to stop the workers and their queues' threads",
    (
        "loading/batches.py",
        "_indices",
    ): "torch's documented access to an uncoalesced COO tensor's parts without a copy "
    "(indices() needs coalesce()); a batch's byte count",
    (
        "loading/batches.py",
        "_values",
    ): "torch's documented access to an uncoalesced COO tensor's parts without a copy "
    "(values() needs coalesce()); a batch's byte count",
}


def _private(name: str) -> bool:
    return (
        name.startswith("_")
        and not (name.startswith("__") and name.endswith("__"))
        and name not in PUBLIC_BY_PROTOCOL
        and not DISPLAY.match(name)
    )


def _is_submodule(path: Path, node: ast.ImportFrom, name: str) -> bool:
    """Whether ``from <node> import name`` imports one of our modules (a private module such
    as ``_take`` or ``_lazy`` is its package's own business), not a name inside one."""
    if node.level == 0:
        if not (node.module or "").startswith("workbench"):
            return False
        base = PKG.parent.joinpath(*node.module.split("."))  # type: ignore[union-attr]
    else:
        base = path.parent
        for _ in range(node.level - 1):
            base = base.parent
        if node.module:
            base = base.joinpath(*node.module.split("."))
    return (
        (base / f"{name}.py").exists() or (base / name).is_dir() or any(base.glob(f"{name}.*.so"))
    )


class _Reach(ast.NodeVisitor):
    """Finds ``(line, expression, private name)`` for each reach into another object."""

    def __init__(self, classes: set[str]) -> None:
        self.classes, self.found = classes, []
        self.built: list[set[str]] = [set()]  # per function: names bound to an own new instance

    def _own_new(self, node: ast.AST) -> bool:
        # cls(...), Own(...), cls.__new__(cls), Own.__new__(Own): class code building its instance
        if not isinstance(node, ast.Call):
            return False
        f = node.func
        if isinstance(f, ast.Attribute) and f.attr == "__new__":
            f = f.value
        return isinstance(f, ast.Name) and f.id in self.classes | {"cls"}

    def _own(self, node: ast.AST) -> bool:
        if isinstance(node, ast.Name):
            return node.id in {"self", "cls"} | self.classes or node.id in self.built[-1]
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "super"
        ):
            return True
        return self._own_new(node)

    def visit_FunctionDef(self, node: ast.AST) -> None:
        self.built.append(set())
        self.generic_visit(node)
        self.built.pop()

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Assign(self, node: ast.Assign) -> None:
        if self._own_new(node.value):
            self.built[-1].update(t.id for t in node.targets if isinstance(t, ast.Name))
        self.generic_visit(node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if _private(node.attr) and not self._own(node.value):
            self.found.append((node.lineno, ast.unparse(node.value), node.attr))
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        f = node.func
        if (
            isinstance(f, ast.Name)
            and f.id in ("getattr", "hasattr", "setattr", "delattr")
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
            and _private(node.args[1].value)
            and not self._own(node.args[0])
        ):
            self.found.append((node.lineno, ast.unparse(node.args[0]), node.args[1].value))
        self.generic_visit(node)


def reaches(path: Path) -> list[tuple[int, str, str]]:
    """``(line, what, private name)`` for each reach of the module at ``path`` into another
    object's or module's private names."""
    tree = ast.parse(path.read_text())
    reach = _Reach({n.name for n in ast.walk(tree) if isinstance(n, ast.ClassDef)})
    reach.visit(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            reach.found += [
                (node.lineno, f"from {'.' * node.level}{node.module or ''} import", a.name)
                for a in node.names
                if _private(a.name) and not _is_submodule(path, node, a.name)
            ]
    return sorted(reach.found)


MODULES = sorted(PKG.rglob("*.py"))


def test_no_module_reaches_into_another_objects_privates():
    found, used = [], set()
    for path in MODULES:
        rel = path.relative_to(PKG).as_posix()
        for line, what, name in reaches(path):
            if (rel, name) in ALLOWED:
                used.add((rel, name))
            else:
                found.append(f"workbench/{rel}:{line}: {what}.{name}")
    assert not found, (
        "private reach into another object (give it a public method or attribute, "
        "or a reason in ALLOWED):\n" + "\n".join(found)
    )
    assert used == set(ALLOWED), f"ALLOWED entries no longer needed: {sorted(set(ALLOWED) - used)}"


def test_the_torch_privates_stay_in_the_workers_room():
    outside = {rel for rel, _ in ALLOWED if rel != "loading/batches.py"}
    assert all(rel.startswith("loading/workers/") for rel in outside), outside


def test_the_checker_sees_what_it_should(tmp_path):
    code = """
import numpy as _np
from .tabular import _helper, TablePacker
from . import _take


class Own:
    def __init__(self, other):
        self._a = 1
        other._b = 2                        # another object's
        Own._c = 3
        getattr(other, "_d", None)          # the same, spelled as a getattr
        getattr(self, "_e", None)
        super()._f()
        obj = Own.__new__(Own)
        obj._g = 4                          # the class building its own instance
        _np._h                              # an imported module's private
        other.__dict__, other._fields, other._repr_html_()

    @classmethod
    def make(cls):
        return cls()._i


def elsewhere(x):
    return x._j
"""
    (tmp_path / "tabular.py").write_text("")
    (tmp_path / "_take.py").write_text("")
    mod = tmp_path / "mod.py"
    mod.write_text(code)
    assert [name for _, _, name in reaches(mod)] == ["_helper", "_b", "_d", "_h", "_j"]


# -- dataset capabilities ------------------------------------------------------------------

PROTOCOLS = {
    name: obj
    for name, obj in vars(protocols).items()
    if isinstance(obj, type)
    and getattr(obj, "_is_protocol", False)
    and obj.__module__ == protocols.__name__
}


def _doc_table() -> dict[str, set[str]]:
    """docs/CONTRACTS.md's table: protocol -> the classes it names as having it."""
    text = DOC.read_text()
    assert "## Dataset capabilities" in text, "docs/CONTRACTS.md lost its 'Dataset capabilities'"
    body = text.split("## Dataset capabilities", 1)[1].split("\n## ", 1)[0]
    table = {}
    for line in body.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0].startswith("`") and cells[0].strip("`") in PROTOCOLS:
            table[cells[0].strip("`")] = set(re.findall(r"`(\w+)`", cells[3]))
    return table


@pytest.fixture(scope="module")
def ours(tmp_path_factory):
    """One instance of each of our dataset classes, over small real files."""
    da = pytest.importorskip("dask.array")
    tmp = tmp_path_factory.mktemp("contracts")
    data = {"x": np.arange(400, dtype="float32").reshape(200, 2), "y": np.arange(200)}
    for f in ("store", "hdf5", "parquet"):
        wb.convert(data, tmp / f"d.{f}", format=f, progress=False)
    np.save(tmp / "m.npy", data["x"])
    found = [wb.open_dataset(tmp / f"d.{f}") for f in ("store", "hdf5", "parquet")]
    found += [
        wb.open_dataset(
            "file://" + os.path.abspath(tmp / "d.store"),
            cache_dir=tmp / "cache",
            cache_bytes=1 << 20,
        ),
        wb.open_dataset(data),
        wb.open_dataset(str(tmp / "m.npy")),
        wb.open_dataset(da.from_array(data["x"], chunks=50)),
    ]
    found.append(wb.mix({"a": found[0], "b": found[4]}))
    zarr = pytest.importorskip("zarr")
    xr = pytest.importorskip("xarray")
    z = zarr.open_array(tmp / "z.zarr", mode="w", shape=(200, 2), chunks=(50, 2), dtype="f4")
    z[:] = data["x"]
    found.append(wb.open_dataset(str(tmp / "z.zarr")))
    found.append(wb.open_dataset(xr.DataArray(data["x"], dims=("row", "col"))))
    return {type(ds).__name__: ds for ds in found}


def test_the_doc_lists_every_protocol():
    assert set(_doc_table()) == set(PROTOCOLS), (
        f"docs/CONTRACTS.md lists {sorted(_doc_table())}, protocols.py defines {sorted(PROTOCOLS)}"
    )
    assert all(getattr(p, "_is_runtime_protocol", False) for p in PROTOCOLS.values())


def test_our_datasets_have_the_capabilities_the_doc_says(ours):
    table = _doc_table()
    assert set().union(*table.values()) <= set(ours), (
        "the doc names a class this test does not build"
    )
    for cls, ds in ours.items():
        has = {name for name, p in PROTOCOLS.items() if isinstance(ds, p)}
        claimed = {name for name, classes in table.items() if cls in classes}
        assert has == claimed, f"{cls}: has {sorted(has)}, docs/CONTRACTS.md says {sorted(claimed)}"


def test_what_the_loader_finds_in_our_datasets(ours):
    store, hdf5 = Capabilities.of(ours["StoreDataset"]), Capabilities.of(ours["Hdf5Dataset"])
    assert store.block_rows == ours["StoreDataset"].block_rows and store.shard_rows == [200]
    assert store.will_need is not None and not store.plans_reads
    assert store.row_nbytes == ours["StoreDataset"].row_nbytes
    assert hdf5.will_need is None and hdf5.shard_rows is None and not hdf5.reads_ahead
    assert Capabilities.of(ours["RemoteStoreDataset"]).plans_reads


class Plain(torch.utils.data.Dataset):
    """PyTorch's map-style contract and nothing else."""

    def __len__(self) -> int:
        return 50

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"y": torch.tensor(i)}


@pytest.mark.parametrize("num_workers", [0, 2])
def test_a_plain_torch_dataset_has_none_of_them_and_still_loads(num_workers):
    ds = Plain()
    assert not [name for name, p in PROTOCOLS.items() if isinstance(ds, p)]
    assert Capabilities.of(ds) == Capabilities()
    dl = wb.loader(ds, batch_size=8, shuffle=True, seed=3, num_workers=num_workers)
    assert dl.block_rows == 4096 and "fallback" in dl.block_rows_from
    rows = torch.cat([b["y"] for b in dl])
    assert sorted(rows.tolist()) == list(range(50)) and rows.tolist() != list(range(50))
