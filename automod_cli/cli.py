"""The `automod` command: parse, call the core, report with rich. No maths here."""

from __future__ import annotations

import sys

import typer
from rich.markup import escape

from automod_cli import __version__
from automod_cli.commands import encode, eval, importing, info, models, ops, prep, project, serve, train
from automod_cli.console import say
from automod_cli.errors import AutomodError

app = typer.Typer(
    name="automod",
    help="Deep automodulators: train, evaluate and use AdaIN-modulated generative autoencoders.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"automod {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Deep automodulators: train, evaluate and use AdaIN-modulated generative autoencoders."""


def _register() -> None:
    """Attach the command modules. A command is registered only once it works."""
    prep.register(app)
    train.register(app)
    info.register(app)
    importing.register(app)
    models.register(app)
    project.register(app, eval.register(app))  # `eval project` joins the eval group, `project` the top level
    ops.register(app)
    encode.register(app)
    serve.register(app)


_register()


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; also callable from tests. Returns the exit code."""
    try:
        app(args=argv, prog_name="automod")
    except SystemExit as exc:  # typer's standalone mode ends every run this way
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except AutomodError as exc:
        say(f"[bold red]error:[/] {escape(str(exc))}", markup=True, err=True)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
