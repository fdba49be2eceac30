"""The public API: ``__all__`` is exactly the exported names (as httpx's test_exported_members
does), each module's ``__all__`` is its share of them, imports stay light, no pickle anywhere."""

from __future__ import annotations

import ast
import importlib
import pkgutil
import subprocess
import sys
from pathlib import Path

import workbench as wb

PKG = Path(wb.__file__).parent


def _modules() -> list:
    return [importlib.import_module(m.name) for m in pkgutil.walk_packages([str(PKG)], "workbench.")
            if m.name != "workbench.__main__"]


def test_all_equals_the_exported_members():
    exported = [m for m in dir(wb) if not m.startswith("_")]
    assert exported == sorted(wb._EXPORTS)
    assert wb.__all__ == sorted([*wb._EXPORTS, "__version__"])
    for name in wb.__all__:
        assert getattr(wb, name) is not None, name


def test_each_module_all_is_its_share_of_the_public_names():
    claimed: dict[str, str] = {}
    for mod in _modules():
        private = any(part.startswith("_") for part in mod.__name__.split(".")[1:])
        names = getattr(mod, "__all__", None)
        if private:
            assert not names, f"{mod.__name__} is private but exports {names}"
            continue
        assert names is not None, f"{mod.__name__}: declare __all__ (empty when nothing is public)"
        for name in names:
            assert name in wb._EXPORTS, f"{mod.__name__}.{name} is in its __all__ but not exported"
            assert hasattr(mod, name), f"{mod.__name__}.__all__ names {name}, which it lacks"
            claimed[name] = mod.__name__
    assert claimed == {k: f"workbench.{v}" for k, v in wb._EXPORTS.items()}


def test_public_functions_are_not_shadowed_by_submodules():
    _modules()
    for name in ("convert", "verify", "loader", "open_dataset", "info", "to_device", "as_dask"):
        assert callable(getattr(wb, name)) and not isinstance(getattr(wb, name), type(sys)), name


def test_public_callables_have_docstring_examples():
    for name in wb.__all__:
        obj = getattr(wb, name)
        if callable(obj) and not isinstance(obj, type):
            assert obj.__doc__ and ">>>" in obj.__doc__, f"{name} needs a docstring with an example"


def test_import_is_light():
    code = ("import sys, workbench; print(sorted(m for m in ('torch', 'ipywidgets', 'distributed', "
            "'h5py', 'pyarrow', 'tqdm', 'bokeh') if m in sys.modules))")
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


def test_only_our_own_errors_are_raised():
    """``raise ValueError(...)`` and friends only inside parsers that turn them into ours."""
    builtin = {"ValueError", "TypeError", "KeyError", "RuntimeError", "OSError", "IOError",
               "FileNotFoundError", "IndexError", "NotImplementedError", "AssertionError"}
    allowed = {("manifest.py", "ValueError"), ("manifest.py", "TypeError"),  # caught in from_json
               ("datasets/base.py", "IndexError"),  # the Dataset protocol: out-of-range rows
               ("datasets/plan.py", "IndexError"),
               ("datasets/samples.py", "IndexError"),  # the Sequence protocol ends iteration so
               ("cli.py", "ArgumentTypeError")}
    for path in PKG.rglob("*.py"):
        rel = path.relative_to(PKG).as_posix()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
                name = getattr(node.exc.func, "id", getattr(node.exc.func, "attr", ""))
                if name in builtin and (rel, name) not in allowed and name != "NotImplementedError":
                    raise AssertionError(f"{rel}:{node.lineno}: raises builtin {name}; raise one of "
                                         "workbench.errors with a message that says what to do")
