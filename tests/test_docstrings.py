"""Every public callable carries numpydoc sections that agree with its code: each parameter of
its signature documented (``Parameters`` or ``Other Parameters``) and none that it lacks, a
``Returns`` (or ``Yields``) section where it returns something, a ``Raises`` section where its
body raises one of our errors, and its ``>>>`` examples under ``Examples``.

The public callables are the functions and classes (minus errors and warnings) in the
``__all__`` of each package face, and the public methods of the main types."""

from __future__ import annotations

import ast
import importlib
import inspect
import textwrap
import warnings
from typing import Any

import pytest
from numpydoc.docscrape import ClassDoc, FunctionDoc

import workbench.errors

FACES = (
    "workbench",
    "workbench.loading",
    "workbench.conversion",
    "workbench.format",
    "workbench.datasets",
    "workbench.monitoring",
    "workbench.tuning",
    "workbench.bench",
    "workbench.explore",
    "workbench.demo",
    "workbench.ui",
    "workbench.results",
    "workbench.cluster",
)
# The main types, whose public methods are documented too (by their name on a face).
MAIN_TYPES = ("Loader", "Monitor", "BatchSampler", "LoaderConfig", "Tuner", "Watch")

ERRORS = frozenset(
    name
    for name, obj in vars(workbench.errors).items()
    if inspect.isclass(obj) and issubclass(obj, BaseException)
)


def _public_objects() -> dict[str, Any]:
    """``{qualified name: function or class}`` for every public callable on a face, once each."""
    found: dict[int, tuple[str, Any]] = {}
    for face in FACES:
        module = importlib.import_module(face)
        for name in module.__all__:
            obj = getattr(module, name)
            if inspect.isclass(obj):
                if issubclass(obj, (BaseException, Warning)):
                    continue
            elif not inspect.isfunction(obj):
                continue
            found.setdefault(id(obj), (f"{obj.__module__}.{obj.__qualname__}", obj))
    return dict(sorted(found.values()))


def _public_methods(objects: dict[str, Any]) -> dict[str, tuple[type, str]]:
    """``{qualified name: (class, method name)}`` for the methods the main types define."""
    types = {obj.__name__: obj for obj in objects.values() if inspect.isclass(obj)}
    out: dict[str, tuple[type, str]] = {}
    for type_name in MAIN_TYPES:
        cls = types[type_name]
        for name, member in vars(cls).items():
            if name.startswith("_"):
                continue
            if isinstance(member, (staticmethod, classmethod)) or inspect.isfunction(member):
                out[f"{cls.__module__}.{cls.__qualname__}.{name}"] = (cls, name)
    return dict(sorted(out.items()))


OBJECTS = _public_objects()
METHODS = _public_methods(OBJECTS)


def _function_of(member: Any) -> Any:
    return member.__func__ if isinstance(member, (staticmethod, classmethod)) else member


def _parameters(fn: Any, drop_first: bool) -> list[str]:
    """The parameters a caller passes (a dataclass's private ``_fields`` are not theirs)."""
    params = list(inspect.signature(fn).parameters)
    return [p for p in (params[1:] if drop_first else params) if not p.startswith("_")]


def _documented(doc: Any) -> list[str]:
    """The names the Parameters and Other Parameters sections document (``a, b : int`` is two,
    ``*args`` and ``\\*\\*kwargs`` count by their bare names)."""
    names = []
    for section in ("Parameters", "Other Parameters"):
        for param in doc[section]:
            for name in param.name.split(","):
                name = name.strip().replace("\\", "").lstrip("*")
                if name:
                    names.append(name)
    return names


def _raised_errors(fn: Any) -> set[str]:
    """Our errors that ``fn``'s own body raises directly (not in functions nested in it)."""
    try:
        source = textwrap.dedent(inspect.getsource(fn))
    except (OSError, TypeError):  # generated (a dataclass's __init__): no source, no raise
        return set()
    tree = ast.parse(source)
    node = next(n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)))
    raised: set[str] = set()

    def visit(parent: ast.AST) -> None:
        for child in ast.iter_child_nodes(parent):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
                continue
            if isinstance(child, ast.Raise) and child.exc is not None:
                exc = child.exc.func if isinstance(child.exc, ast.Call) else child.exc
                name = exc.id if isinstance(exc, ast.Name) else getattr(exc, "attr", None)
                if name in ERRORS:
                    raised.add(name)
            visit(child)

    visit(node)
    return raised


def _parse(make: Any) -> tuple[Any, list[str]]:
    """The parsed docstring and numpydoc's complaints about it (warnings or a parse error)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            doc = make()
        except Exception as exc:  # numpydoc raises ValueError on a malformed section
            return None, [f"numpydoc cannot parse the docstring: {exc}"]
    return doc, [f"numpydoc: {w.message}" for w in caught]


def _problems(doc: Any, params: list[str], returns: Any, raised: set[str]) -> list[str]:
    problems = []
    documented = _documented(doc)
    for name in params:
        if name not in documented:
            problems.append(f"parameter {name!r} is not in Parameters or Other Parameters")
    for name in documented:
        if name not in params:
            problems.append(f"documents a parameter {name!r} that the signature lacks")
    if returns not in (inspect.Signature.empty, None, "None") and not (
        doc["Returns"] or doc["Yields"]
    ):
        problems.append(f"returns {returns} but has no Returns (or Yields) section")
    if raised and not doc["Raises"]:
        problems.append(f"raises {', '.join(sorted(raised))} but has no Raises section")
    for section, content in doc._parsed_data.items():
        if section != "Examples" and ">>>" in str(content):
            problems.append(f"a >>> example sits in {section}, not under 'Examples\\n--------'")
    return problems


def _check_class(cls: type) -> list[str]:
    doc, problems = _parse(lambda: ClassDoc(cls, config={"show_class_members": False}))
    if doc is None:
        return problems
    init = cls.__init__
    own_init = init is not object.__init__ and inspect.isfunction(init)
    params = _parameters(init, drop_first=True) if own_init else []
    raised = _raised_errors(init) if "__init__" in vars(cls) else set()
    return problems + _problems(doc, params, inspect.Signature.empty, raised)


def _check_function(fn: Any, drop_first: bool = False) -> list[str]:
    doc, problems = _parse(lambda: FunctionDoc(fn))
    if doc is None:
        return problems
    params = _parameters(fn, drop_first)
    returns = inspect.signature(fn).return_annotation
    return problems + _problems(doc, params, returns, _raised_errors(fn))


def test_the_walk_finds_the_public_callables():
    """The walk itself: it sees the verbs, the main types and their methods, and no errors."""
    assert {
        "workbench.loading.loaders.loader",
        "workbench.loading.loaders.Loader",
        "workbench.ui.panel.tune",
        "workbench.explore.inspection.inspect",
    } <= set(OBJECTS)
    assert not [n for n in OBJECTS if n.endswith(("Error", "Warning"))]
    assert {t for t in MAIN_TYPES} <= {n.split(".")[-2] for n in METHODS}
    assert "InvalidInputError" in ERRORS
    assert _raised_errors(_public_objects) == set()
    assert _raised_errors(importlib.import_module("workbench.datasets")._open) == {
        "InvalidInputError"
    }


def _badly_documented(a: int, *args: Any, b: str = "", **kw: Any) -> int:
    """A function whose docstring breaks every rule once.

    >>> 1 + 1
    2

    Parameters
    ----------
    a, \\*args : int
    ghost : str
    """
    if a:
        raise workbench.errors.InvalidInputError("a")
    return 0


def test_the_checker_flags_what_it_should():
    problems = _check_function(_badly_documented)
    assert problems == [
        "parameter 'b' is not in Parameters or Other Parameters",
        "parameter 'kw' is not in Parameters or Other Parameters",
        "documents a parameter 'ghost' that the signature lacks",
        "returns int but has no Returns (or Yields) section",
        "raises InvalidInputError but has no Raises section",
        "a >>> example sits in Extended Summary, not under 'Examples\\n--------'",
    ], problems


@pytest.mark.parametrize("name", sorted(OBJECTS))
def test_public_callable_has_numpydoc_sections(name):
    obj = OBJECTS[name]
    problems = _check_class(obj) if inspect.isclass(obj) else _check_function(obj)
    assert not problems, f"{name}: " + "; ".join(problems)


@pytest.mark.parametrize("name", sorted(METHODS))
def test_public_method_of_a_main_type_has_numpydoc_sections(name):
    cls, attr = METHODS[name]
    member = vars(cls)[attr]
    problems = _check_function(
        _function_of(member), drop_first=not isinstance(member, staticmethod)
    )
    assert not problems, f"{name}: " + "; ".join(problems)
