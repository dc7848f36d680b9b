"""The import graph: no cycles, every module importable on its own, and the layering docs/architecture.md states.

The graph is read from the source (module-level imports only: imports inside functions are lazy on purpose, and
`if TYPE_CHECKING:` blocks never run). Importing `a.b.c` runs the `__init__` of `a` and `a.b` first, so a module
also depends on its ancestor packages."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("automod_cli", "data_prep")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {
    _module_name(p): p
    for pkg in PACKAGES
    for p in sorted((ROOT / pkg).rglob("*.py"))
    if p.name != "__main__.py"
}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _all_imports(tree: ast.Module):
    """Every import statement, those inside functions (run later, on first use) included."""
    return (node for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom)))


def _module_level_imports(tree: ast.Module):
    """Import statements that run when the module is imported (top level, and inside top-level try/if/with)."""
    pending = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, ast.If) and not _is_type_checking(node):
            pending += node.body + node.orelse
        elif isinstance(node, ast.Try):
            pending += node.body + node.orelse + node.finalbody + [s for h in node.handlers for s in h.body]
        elif isinstance(node, ast.With):
            pending += node.body


def _targets(module: str, node: ast.Import | ast.ImportFrom) -> set[str]:
    if isinstance(node, ast.Import):
        names = {alias.name for alias in node.names}
    else:
        base = node.module or ""
        if node.level:  # relative import
            package = module if MODULES[module].name == "__init__.py" else module.rsplit(".", 1)[0]
            for _ in range(node.level - 1):
                package = package.rsplit(".", 1)[0]
            base = f"{package}.{base}" if base else package
        names = {
            f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names
        }
    found = set()
    for name in names:
        while name and name not in MODULES:  # `import a.b.func`-like names: the longest module prefix
            name = name.rpartition(".")[0]
        if name:
            found.add(name)
    return found


def _ancestors(module: str) -> set[str]:
    parts = module.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts))} & MODULES.keys()


def import_graph(lazy: bool = False) -> dict[str, set[str]]:
    """module → the modules its import runs: each target and the target's packages (their `__init__` runs first),
    except the module's own packages, which are already being imported when it is. With `lazy`, the imports
    inside functions count too: a dependency is a dependency, whenever it is imported."""
    graph = {}
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        imports = _all_imports(tree) if lazy else _module_level_imports(tree)
        targets = set().union(*(_targets(module, node) for node in imports))
        edges = set().union(*({t} | _ancestors(t) for t in targets)) if targets else set()
        graph[module] = edges - _ancestors(module) - {module}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan's algorithm, iterative)."""
    index, low, on_stack, stack, found, counter = {}, {}, set(), [], [], [0]

    def visit(root: str) -> None:
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter[0]
                    counter[0] += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return found


def test_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_graph_is_read():
    graph = import_graph()
    assert "automod_cli.errors" in graph["automod_cli.cli"]
    assert "automod_cli.models.decoder" in graph["automod_cli.models"]  # a package __init__ and its children
    assert (
        "automod_cli.models" in graph["automod_cli.checkpoint"]
    )  # importing models.x runs models/__init__ first


def test_no_import_cycles():
    found = cycles(import_graph())
    assert not found, "import cycles: " + "; ".join(" ↔ ".join(c) for c in found)


def test_no_cycles_through_lazy_imports():
    """An import moved into a function hides a cycle from the interpreter, not from the reader."""
    found = cycles(import_graph(lazy=True))
    assert not found, "import cycles (some imports inside functions): " + "; ".join(
        " ↔ ".join(c) for c in found
    )


def test_data_prep_imports_only_the_error_type_version_and_output_checks():
    """docs/architecture.md: data_prep stands apart; of automod_cli it uses only the error type, the version and
    the output checks (which import nothing of automod_cli but the error type)."""
    graph = import_graph()
    allowed = {"automod_cli", "automod_cli.errors", "automod_cli.outputs"}
    assert {e for e in graph["automod_cli.outputs"] if e.startswith("automod_cli")} <= {"automod_cli.errors"}
    for module, edges in graph.items():
        if module.startswith("data_prep"):
            outside = {e for e in edges if e.startswith("automod_cli")} - allowed
            assert not outside, f"{module} imports {sorted(outside)}"


SIBLINGS = ("ops", "training", "metrics", "features")
ALLOWED = {("metrics", "ops"), ("metrics", "features"), ("ops", "features"), ("training", "features")}


def test_sibling_packages_import_each_other_only_as_the_architecture_doc_says():
    """docs/architecture.md: of ops, training and metrics only metrics imports ops (a metric measures the image
    operations); all may use features, which imports none of them."""
    for module, edges in import_graph(lazy=True).items():
        parts = module.split(".")
        if len(parts) < 2 or parts[1] not in SIBLINGS:
            continue
        for edge in edges:
            target = edge.split(".")
            if len(target) > 1 and target[1] in SIBLINGS and target[1] != parts[1]:
                assert (parts[1], target[1]) in ALLOWED, f"{module} imports {edge}"


def test_every_module_imports_in_a_fresh_interpreter():
    names = sorted(MODULES)
    code = "import importlib, sys\nfor name in sys.argv[1:]:\n    importlib.import_module(name)\n"
    result = subprocess.run(
        [sys.executable, "-c", code, *names], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]


@pytest.mark.parametrize(
    "entry", ["automod_cli.cli", "automod_cli.training", "automod_cli.ops", "data_prep.prep"]
)
def test_entry_modules_import_first(entry):
    """Each entry point imports on its own first (an order-dependent cycle would show up here)."""
    result = subprocess.run(
        [sys.executable, "-c", f"import {entry}"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]


def _layout_entries() -> dict[str, str]:
    """docs/architecture.md's Layout block: each top entry (`  training/`, `  cli.py`, `data_prep/`) → its text."""
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    block = text.split("## Layout\n```\n", 1)[1].split("```", 1)[0]
    entries, current = {}, None
    for line in block.splitlines():
        head = line[:23].strip()
        if head and not line.startswith(" " * 4):
            current = (
                head
                if head.startswith("data_prep")
                else f"automod_cli/{head}"
                if line.startswith("  ")
                else head
            )
            entries[current] = ""
        if current:
            entries[current] += " " + line[23:]
    return entries


def test_the_architecture_doc_names_every_module():
    """Each module of the packages is named in the Layout block under its top-level entry."""
    entries = _layout_entries()
    for module, path in MODULES.items():
        parts = path.relative_to(ROOT).parts
        if path.name == "__init__.py" and parts[:-1] != ("automod_cli", "training"):
            continue  # package docstrings; training/__init__.py is the Python API, so the layout names it
        top = (
            "data_prep/"
            if parts[0] == "data_prep"
            else "/".join(parts[:2]) + ("" if len(parts) == 2 else "/")
        )
        assert top in entries, f"docs/architecture.md's layout has no entry for {top}"
        if top.endswith(".py"):
            continue
        assert path.name in entries[top] or path.stem in entries[top].split(), (
            f"docs/architecture.md's layout entry {top} does not name {path.relative_to(ROOT)}"
        )


def test_the_architecture_doc_names_no_missing_module():
    named = set()
    for top, text in _layout_entries().items():
        if top.startswith("automod_cli/") or top.startswith("data_prep"):
            named |= {name for name in re.findall(r"\b([a-z_0-9]+\.py)\b", text + " " + top.split("/")[-1])}
    present = {path.name for package in PACKAGES for path in (ROOT / package).rglob("*.py")}
    assert named <= present, f"named in the layout but absent: {sorted(named - present)}"


COMMAND_HELPERS = {
    "automod_cli.commands",
    "automod_cli.commands.options",
    "automod_cli.commands.ops_report",
    "automod_cli.commands.train_report",
}


def test_no_command_module_imports_another():
    """docs/architecture.md: a command module parses and reports; what commands share (option types, console helpers,
    the image commands' steps and reports) lives in the helper modules, never in another command's module."""
    for module, edges in import_graph(lazy=True).items():
        if module.startswith("automod_cli.commands.") and module not in COMMAND_HELPERS:
            others = {e for e in edges if e.startswith("automod_cli.commands.") and e not in COMMAND_HELPERS}
            assert not others, f"{module} imports the command module(s) {sorted(others)}"
