"""`automod models`: the named pretrained models (the authors' published automodulators) and which are here."""

from __future__ import annotations

import json

import typer
from rich.table import Table

from automod_cli.console import console, say


def models(
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON on stdout."),
) -> None:
    """List the authors' pretrained models that every --model accepts by name, and whether each is here.

    A missing one is downloaded (then converted) the first time it is used; AUTOMOD_OFFLINE=1 stops that.
    Example: automod reconstruct face.jpg --model ffhq256
    """
    from automod_cli import pretrained

    entries = pretrained.listing()
    style = {pretrained.CONVERTED: "green", pretrained.AUTHORS: "yellow", pretrained.MISSING: "red"}
    if as_json:
        typer.echo(json.dumps([e.to_dict() for e in entries], indent=2))
        return
    if console.is_terminal:
        table = Table(title="pretrained models (Heljakka et al. 2020, MIT licence)", title_justify="left")
        for column in ("name", "res.", "description", "state"):
            table.add_column(column, no_wrap=column != "description")
        table.add_column("path", overflow="fold")
        for e in entries:
            table.add_row(
                e.name, str(e.resolution), e.description, f"[{style[e.state]}]{e.state}[/]", str(e.path)
            )
        console.print(table)
    else:  # piped or in a log: one line per model, the path whole and last (a table folds it at 80 columns)
        console.print("pretrained models (Heljakka et al. 2020, MIT licence)")
        for e in entries:
            say(f"{e.name}  {e.resolution}²  {e.state}  {e.description}  {e.path}")
    if any(e.state == pretrained.MISSING for e in entries):
        later = (
            f"{pretrained.OFFLINE_ENV} is set, so put the authors' file at the path shown"
            if pretrained.offline()
            else "a missing model is downloaded to the path shown, then converted, the first time it is used"
        )
        say(later)
    say(
        f"converted models: {pretrained.automod_home() / pretrained.MODELS_DIR} (${pretrained.HOME_ENV}); "
        f"the authors' files: {pretrained.authors_path('ffhq256').parent} (torch.hub, $TORCH_HOME)"
    )


def register(app: typer.Typer) -> None:
    app.command("models")(models)
