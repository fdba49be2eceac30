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
    return [
        importlib.import_module(m.name)
        for m in pkgutil.walk_packages([str(PKG)], "workbench.")
        if m.name != "workbench.__main__"
    ]


def test_all_equals_the_exported_members():
    exported = [m for m in dir(wb) if not m.startswith("_")]
    assert exported == sorted([*wb._EXPORTS, *wb._NAMESPACES])
    assert wb.__all__ == sorted([*wb._EXPORTS, *wb._NAMESPACES, "__version__"])
    for name in wb.__all__:
        assert getattr(wb, name) is not None, name


def test_the_top_namespace_holds_the_verbs_and_main_types():
    """About 30 names (40 at most): errors, result types and benchmark helpers live in their
    namespaces."""
    assert len(wb._EXPORTS) <= 40, sorted(wb._EXPORTS)
    assert not [n for n in wb._EXPORTS if n.endswith(("Error", "Warning"))]
    assert set(wb._EXPORTS).isdisjoint(wb.results.__all__)
    assert set(wb._EXPORTS).isdisjoint(wb.bench.__all__)


def test_moved_names_keep_working():
    """Names that left the top still resolve there, to the object their namespace holds."""
    for name, space in wb._MOVED.items():
        assert name not in dir(wb)
        assert getattr(wb, name) is getattr(getattr(wb, space), name), name


def test_top_names_are_their_packages_names():
    for name, pkg in wb._EXPORTS.items():
        face = importlib.import_module(f"workbench.{pkg}")
        assert name in face.__all__, f"wb.{name} comes from workbench.{pkg}, whose __all__ lacks it"
        assert getattr(wb, name) is getattr(face, name), name


def _faces() -> list:
    """Every package's __init__ (its public face), and the namespaces that are plain modules."""
    return [
        m
        for m in _modules()
        if hasattr(m, "__path__")
        or m.__name__
        in {"workbench.results", "workbench.errors", "workbench.cluster", "workbench.testing"}
    ]


def test_each_face_lists_what_it_exports():
    for face in _faces():
        names = getattr(face, "__all__", None)
        assert names is not None, f"{face.__name__}: declare __all__ (empty when nothing is public)"
        assert sorted(names) == sorted(set(names)), f"{face.__name__}.__all__ repeats a name"
        for name in names:
            assert getattr(face, name) is not None, f"{face.__name__}.{name}"
        if "__dir__" in vars(face):
            assert sorted(names) == sorted(face.__dir__()), face.__name__


def test_each_public_name_is_defined_once_and_shown_on_a_face():
    """A leaf module's __all__ names what it defines; its package's face (or, for result types,
    ``workbench.results``) shows each of them."""
    shown = {n for face in _faces() for n in face.__all__}
    defined: dict[str, str] = {}
    for mod in _modules():
        if hasattr(mod, "__path__"):
            continue
        private = any(part.startswith("_") for part in mod.__name__.split(".")[1:])
        names = getattr(mod, "__all__", None)
        if private:
            assert not names, f"{mod.__name__} is private but exports {names}"
            continue
        assert names is not None, f"{mod.__name__}: declare __all__ (empty when nothing is public)"
        for name in names:
            assert hasattr(mod, name), f"{mod.__name__}.__all__ names {name}, which it lacks"
            if mod.__name__ in ("workbench.results",):
                continue
            assert name not in defined, (
                f"{name} is public in {defined.get(name)} and {mod.__name__}"
            )
            defined[name] = mod.__name__
            assert name in shown, f"{mod.__name__}.{name} is public but no package face shows it"
    for name, space in wb._MOVED.items():
        assert name in getattr(wb, space).__all__, (name, space)


def test_every_error_is_in_wb_errors():
    for name in dir(wb.errors):
        obj = getattr(wb.errors, name)
        if isinstance(obj, type) and issubclass(
            obj, (wb.errors.WorkbenchError, wb.errors.WorkbenchWarning)
        ):
            assert name in wb.errors.__all__, name


def test_public_functions_are_not_shadowed_by_submodules():
    """No submodule is named like a public name of its package: once every module is imported,
    each face's names are still its functions and types, never a module."""
    _modules()
    for face in _faces():
        for name in face.__all__:
            assert not isinstance(getattr(face, name), type(sys)), (
                f"{face.__name__}.{name} is a module"
            )
    for name in wb.__all__:
        if name not in wb._NAMESPACES:
            assert not isinstance(getattr(wb, name), type(sys)), name


def test_public_callables_have_docstring_examples():
    for name in [*wb.__all__, *wb._MOVED]:
        obj = getattr(wb, name)
        if callable(obj) and not isinstance(obj, type):
            assert obj.__doc__ and ">>>" in obj.__doc__, f"{name} needs a docstring with an example"


def test_import_is_light():
    code = (
        "import sys, workbench; print(sorted(m for m in ('torch', 'ipywidgets', 'distributed', "
        "'h5py', 'pyarrow', 'tqdm', 'bokeh') if m in sys.modules))"
    )
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
                assert not (
                    isinstance(node.value, ast.Constant)
                    and node.value.value is (node.arg == "allow_pickle")
                ), f"{path}:{node.lineno}: {node.arg}={node.value.value}"
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "eval":
                raise AssertionError(f"{path}:{node.lineno}: eval(")


def test_only_our_own_errors_are_raised():
    """``raise ValueError(...)`` and friends only inside parsers that turn them into ours."""
    builtin = {
        "ValueError",
        "TypeError",
        "KeyError",
        "RuntimeError",
        "OSError",
        "IOError",
        "FileNotFoundError",
        "IndexError",
        "NotImplementedError",
        "AssertionError",
    }
    allowed = {
        ("format/manifest.py", "ValueError"),
        ("format/manifest.py", "TypeError"),  # from_json
        ("datasets/base.py", "IndexError"),  # the Dataset protocol: out-of-range rows
        ("datasets/plan.py", "IndexError"),
        ("datasets/samples.py", "IndexError"),  # the Sequence protocol ends iteration so
        ("cli.py", "ArgumentTypeError"),
        ("testing.py", "AssertionError"),
    }  # contract checks fail as assertions, in pytest
    for path in PKG.rglob("*.py"):
        rel = path.relative_to(PKG).as_posix()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
                name = getattr(node.exc.func, "id", getattr(node.exc.func, "attr", ""))
                if name in builtin and (rel, name) not in allowed and name != "NotImplementedError":
                    raise AssertionError(
                        f"{rel}:{node.lineno}: raises builtin {name}; raise one of "
                        "workbench.errors with a message that says what to do"
                    )
