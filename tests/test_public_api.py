"""The public API: a sorted, complete __all__ that resolves, and no module shadows a function."""

from __future__ import annotations

import ast
import importlib
import pkgutil
import subprocess
import sys
from pathlib import Path

import workbench as wb

PKG = Path(wb.__file__).parent


def test_all_is_sorted_and_resolves():
    assert wb.__all__ == sorted(wb.__all__)
    for name in wb.__all__:
        assert getattr(wb, name) is not None, name


def test_public_functions_are_not_shadowed_by_submodules():
    for mod in pkgutil.walk_packages([str(PKG)], "workbench."):
        if mod.name != "workbench.__main__":
            importlib.import_module(mod.name)
    for name in ("convert", "verify", "loader", "open_dataset", "info", "to_device", "as_dask"):
        assert callable(getattr(wb, name)) and not isinstance(getattr(wb, name), type(sys)), name


def test_public_callables_have_docstring_examples():
    for name in wb.__all__:
        obj = getattr(wb, name)
        if callable(obj) and not isinstance(obj, type) and not name.startswith("_"):
            assert obj.__doc__ and ">>>" in obj.__doc__, f"{name} needs a docstring with an example"


def test_import_is_light():
    code = "import sys, workbench; print(sorted(m for m in ('torch','ipywidgets','distributed','h5py') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_no_pickle_anywhere():
    banned = {"pickle", "cPickle", "dill", "cloudpickle"}
    for path in PKG.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
                assert not banned & {n.split(".")[0] for n in names}, f"{path}: imports pickle"
            if isinstance(node, ast.keyword) and node.arg in ("allow_pickle", "weights_only"):
                assert not (isinstance(node.value, ast.Constant) and node.value.value is (node.arg == "allow_pickle")), \
                    f"{path}:{node.lineno}: {node.arg}={node.value.value}"
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "eval":
                raise AssertionError(f"{path}:{node.lineno}: eval(")
