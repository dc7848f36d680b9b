"""House rules read from the source of automod_cli and data_prep (issue 17): a `_name` is private to its module, so
no module imports another's. Line lengths and pyflakes' errors are ruff's (`make lint`, pyproject.toml)."""

from __future__ import annotations

import ast

from test_imports import PACKAGES, ROOT

FILES = sorted(path for package in PACKAGES for path in (ROOT / package).rglob("*.py"))


def _private_imports(tree: ast.Module) -> list[tuple[int, str]]:
    """(line, `module.name`) for each `from automod_cli... import _name` (dunders such as __version__ are public)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in PACKAGES:
            found += [
                (node.lineno, f"{node.module}.{alias.name}")
                for alias in node.names
                if alias.name.startswith("_") and not alias.name.startswith("__")
            ]
    return found


def test_the_private_import_finder_finds_one():
    tree = ast.parse(
        "from automod_cli.config import TrainConfig, _build\nfrom automod_cli import __version__\n"
        "from os import _exit\n"
    )
    assert _private_imports(tree) == [(1, "automod_cli.config._build")]


def test_no_module_imports_another_modules_private_names():
    found = [
        f"{path.relative_to(ROOT)}:{line} imports {name}"
        for path in FILES
        for line, name in _private_imports(ast.parse(path.read_text(encoding="utf-8")))
    ]
    assert not found, "private names imported across modules (make them public in their home):\n" + "\n".join(
        found
    )
