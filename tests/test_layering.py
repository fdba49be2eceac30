"""The layering of ``docs/ARCHITECTURE.md``, read from the imports of every module.

pure logic -> I/O core -> shells (CLI, UI, cluster). A pure module imports only the standard
library's pure parts, NumPy and other pure modules; only the UI room imports widget, chart and
progress libraries (and the dashboard room Bokeh, which the Dask dashboard is drawn with); only
the cluster and dashboard rooms import ``distributed``; the core never imports a shell
at module level, and reaches one lazily only along the edges declared below; module-level imports
between our modules form no cycle.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

import workbench

PKG = Path(workbench.__file__).parent

PURE = {
    "errors",
    "units",
    "_version",
    "format.manifest",
    "format.sparse",
    "format.chunks",
    "format.schema",
    "loading.sampling",
    "loading.splits",
    "loading.resume",
    "loading.orders",
    "loading.calls",
    "datasets.plan",
    "datasets.protocols",
    "datasets.mixplan",
    "datasets.predicates",
    "monitoring.metrics",
    "monitoring.stages",
    "monitoring.remedies",
    "tuning.trials",
    "bench.comparison",
    "explore.facts",
    "explore.moments",
    "explore.layout_rules",
    "explore.findings",
    "explore.chunk_rules",
    "notebooks.bounds",
    "notebooks.sanitizers",
}
SHELLS = {
    "cli",
    "__main__",
    "demo.tour",
    "cluster",
    "dashboard",
    "ui",
    "notebooks",
}  # a name covers the package below it
UI_LIBS = {
    "ipywidgets",
    "bokeh",
    "tqdm",
    "IPython",
    "ipykernel",
    "matplotlib",
    "bqplot",
    "anywidget",
    "panel",
    "plotly",
}
PURE_STDLIB = {
    "__future__",
    "abc",
    "bisect",
    "collections",
    "copyreg",
    "dataclasses",
    "enum",
    "functools",
    "itertools",
    "json",
    "math",
    "numbers",
    "operator",
    "textwrap",
    "re",
    "statistics",
    "types",
    "typing",
    "warnings",
}
PURE_THIRD_PARTY = {"numpy"}
# The core calls a shell only here, lazily (inside the function that needs it), and why:
UPWARD = {
    ("conversion.pipeline", "ui.progress"): "progress=True draws the shell's bar",
    ("conversion.shards", "cluster"): "client=/workers= run the shard jobs as Dask tasks",
    ("explore.statistics", "ui.progress"): "progress=True draws the shell's bar",
    (
        "explore.shown",
        "ui.reprs",
    ): "an explore result prints and renders itself with the shell's views",
}


def _name(path: Path) -> str:
    rel = path.relative_to(PKG).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


MODULES = {_name(p): p for p in sorted(PKG.rglob("*.py"))}


def _room(mod: str, rooms: set[str]) -> bool:
    return any(mod == r or mod.startswith(r + ".") for r in rooms)


def _resolve(mod: str, path: Path, node: ast.ImportFrom) -> list[str]:
    """Our modules an ``from ... import ...`` names (a module, or names inside one)."""
    if node.level == 0:
        if not (node.module or "").startswith("workbench"):
            return []
        base = node.module[len("workbench") :].lstrip(".")  # type: ignore[index]
    else:
        pkg = mod.split(".") if path.name == "__init__.py" else mod.split(".")[:-1]
        pkg = pkg[: len(pkg) - (node.level - 1)] if node.level > 1 else pkg
        base = ".".join([p for p in pkg if p] + ([node.module] if node.module else []))
    out = []
    for alias in node.names:
        sub = f"{base}.{alias.name}" if base else alias.name
        out.append(sub if sub in MODULES else base)
    return [m for m in out if m in MODULES or m == ""]


def _imports(mod: str) -> list[tuple[str, bool, int]]:
    """``(imported name, at module level?, line)``: ours as 'workbench:<mod>', others by top."""
    path = MODULES[mod]
    tree = ast.parse(path.read_text())
    found: list[tuple[str, bool, int]] = []

    def visit(node: ast.AST, top: bool) -> None:
        for child in ast.iter_child_nodes(node):
            nested = top and not isinstance(
                child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)
            )
            if isinstance(child, ast.Import):
                for a in child.names:
                    if a.name.startswith("workbench"):
                        found.append(
                            (
                                f"workbench:{a.name[len('workbench') :].lstrip('.')}",
                                top,
                                child.lineno,
                            )
                        )
                    else:
                        found.append((a.name.split(".")[0], top, child.lineno))
            elif isinstance(child, ast.ImportFrom):
                if child.level == 0 and not (child.module or "").startswith("workbench"):
                    found.append(((child.module or "").split(".")[0], top, child.lineno))
                else:
                    found.extend(
                        (f"workbench:{m}", top, child.lineno) for m in _resolve(mod, path, child)
                    )
            visit(child, nested)

    visit(tree, True)
    return found


def _third_party(name: str) -> bool:
    return not name.startswith("workbench:") and name not in sys.stdlib_module_names


def test_the_rooms_named_here_exist():
    for mod in PURE | SHELLS:
        assert mod in MODULES, f"{mod} is named in the layering but does not exist; update the test"
    for src, dst in UPWARD:
        assert src in MODULES and dst in MODULES, (src, dst)


@pytest.mark.parametrize("mod", sorted(PURE))
def test_pure_modules_import_only_pure_things(mod):
    for name, _, line in _imports(mod):
        if name.startswith("workbench:"):
            ours = name.split(":", 1)[1]
            assert ours in PURE, (
                f"workbench/{mod}.py:{line}: pure module imports workbench.{ours} (I/O or UI)"
            )
        else:
            assert name in PURE_STDLIB | PURE_THIRD_PARTY, (
                f"workbench/{mod}.py:{line}: pure module imports {name}; "
                "pure logic does no I/O or UI"
            )


def test_only_the_ui_room_imports_ui_libraries():
    for mod in MODULES:
        if _room(mod, {"ui"}):
            continue
        allowed = {"bokeh"} if _room(mod, {"dashboard"}) else set()
        for name, _, line in _imports(mod):
            assert name not in UI_LIBS - allowed, (
                f"workbench/{mod}: line {line} imports {name}; only workbench/ui/ may"
            )


def test_only_the_cluster_and_dashboard_rooms_import_distributed():
    for mod in MODULES:
        if _room(mod, {"cluster", "dashboard"}):
            continue
        for name, _, line in _imports(mod):
            assert name != "distributed", (
                f"workbench/{mod}: line {line} imports distributed; "
                "only cluster.py and dashboard/ may"
            )


def test_the_core_reaches_shells_only_lazily_along_declared_edges():
    for mod in MODULES:
        if _room(mod, SHELLS) or mod == "":
            continue
        for name, top, line in _imports(mod):
            if not name.startswith("workbench:"):
                continue
            target = name.split(":", 1)[1]
            if not _room(target, SHELLS):
                continue
            assert (mod, target) in UPWARD, (
                f"workbench/{mod}: line {line} imports the shell {target}; "
                "declare why in UPWARD or invert it"
            )
            assert not top, (
                f"workbench/{mod}: line {line} imports the shell {target} at module level"
            )


def test_no_import_cycles_at_module_level():
    graph = {
        m: {n.split(":", 1)[1] for n, top, _ in _imports(m) if top and n.startswith("workbench:")}
        - {m, ""}
        for m in MODULES
    }
    # a package's __init__ importing its own submodules is how Python packages work: not a cycle
    for m in graph:
        graph[m] = {d for d in graph[m] if not m.startswith(d + ".")}
    state: dict[str, int] = {}
    stack: list[str] = []

    def walk(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for d in sorted(graph.get(m, ())):
            if state.get(d) == 1:
                cycle = stack[stack.index(d) :] + [d]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if d not in state:
                walk(d)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            walk(m)


def test_the_checker_sees_what_it_should():
    """The checker itself: it finds a known lazy edge, a known module-level import and ours."""
    conv = _imports("conversion.pipeline")
    assert ("workbench:ui.progress", False) in {(n, t) for n, t, _ in conv}
    assert ("workbench:conversion.commit", True) in {(n, t) for n, t, _ in conv}
    assert "distributed" in {n for n, _, _ in _imports("cluster")}
    assert "bokeh" in {n for n, _, _ in _imports("dashboard.pages")}
    assert "distributed" in {n for n, _, _ in _imports("dashboard.plugin")}
    assert _third_party("numpy") and not _third_party("json")


def test_modules_stay_small():
    """Rooms of about 80-250 lines; split by responsibility before a file passes 300."""
    for mod, path in MODULES.items():
        lines = len(path.read_text().splitlines())
        assert lines <= 300, (
            f"workbench/{path.relative_to(PKG)} has {lines} lines; split it by responsibility"
        )


ARCH = PKG.parent / "docs" / "ARCHITECTURE.md"


def _package(mod: str) -> str:
    return mod.split(".")[0] if mod else "__init__"


def _package_edges() -> dict[str, set[str]]:
    """Which of our top-level packages (or modules) each one imports, at any level."""
    edges: dict[str, set[str]] = {}
    for mod in MODULES:
        src = _package(mod)
        for name, _, _ in _imports(mod):
            if name.startswith("workbench:"):
                dst = _package(name.split(":", 1)[1])
                if dst != src:
                    edges.setdefault(src, set()).add(dst)
    return edges


def _doc_section(title: str) -> list[str]:
    text = ARCH.read_text()
    assert f"## {title}" in text, f"docs/ARCHITECTURE.md lost its section '{title}'"
    body = text.split(f"## {title}", 1)[1].split("\n## ", 1)[0]
    return body.splitlines()


def test_the_architecture_page_lists_every_import_between_packages():
    """The page's table of allowed imports is the code's, edge for edge: a new edge must be
    declared there, and an edge the code no longer has must leave it."""
    declared: dict[str, set[str]] = {}
    for line in _doc_section("Allowed imports"):
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 2 and cells[0].startswith("`"):
            declared[cells[0].strip("`")] = {w.strip("`") for w in cells[1].split()} - {"-"}
    actual = _package_edges()
    for pkg in sorted(set(actual) | set(declared)):
        have, doc = actual.get(pkg, set()), declared.get(pkg, set())
        assert have <= doc, (
            f"{pkg} imports {sorted(have - doc)}, not declared in docs/ARCHITECTURE.md"
        )
        assert doc <= have, (
            f"docs/ARCHITECTURE.md declares {pkg} -> {sorted(doc - have)}, unused: drop it"
        )


def test_the_architecture_page_lists_the_declared_upward_edges():
    listed = set()
    for line in _doc_section("Upward edges"):
        if line.startswith("- `") and " -> " in line:
            src, dst = line[3:].split("`", 1)[0].split(" -> ")
            listed.add((src, dst))
    assert listed == set(UPWARD), (
        f"docs/ARCHITECTURE.md lists {sorted(listed)}; the test declares {sorted(UPWARD)}"
    )


def test_the_type_checker_covers_every_pure_module():
    """``make test`` runs mypy over pyproject's [tool.mypy] files: exactly the pure modules."""
    tomllib = pytest.importorskip("tomllib")
    files = tomllib.loads((PKG.parent / "pyproject.toml").read_text())["tool"]["mypy"]["files"]
    assert sorted(files) == sorted(str(MODULES[m].relative_to(PKG.parent)) for m in PURE)
