"""Where automod writes text for people: one rich console on stdout and one on stderr, and the line helpers every
command uses.

Neither console colours numbers or paths on its own (`highlight=False`). A line written with `say` is never
hard-wrapped (piped to a file, rich would break a long path at 80 columns) and is plain text unless `markup=True`
(file names keep their brackets); `warn` is one yellow warning line on stderr. Tables, progress bars and JSON go
to the consoles directly.
"""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


def say(text: str, *, markup: bool = False, err: bool = False, **style) -> None:
    """One line (or a few) on stdout, or stderr with `err`; `markup` when `text` holds rich tags (escape the values
    put into it)."""
    (err_console if err else console).print(text, markup=markup, soft_wrap=True, **style)


def warn(text: str) -> None:
    """One yellow 'warning:' line on stderr; `text` is not markup."""
    err_console.print(f"[yellow]warning:[/] {escape(text)}", soft_wrap=True)
