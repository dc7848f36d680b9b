"""`automod serve`: a local page (automod_cli/serve/) to add photos and mix, edit, interpolate and sample them."""

from __future__ import annotations

import secrets
import socket
import webbrowser
from pathlib import Path
from typing import Optional

import typer

from automod_cli.commands.options import open_model
from automod_cli.console import say
from automod_cli.errors import AutomodError
from automod_cli.serve.guard import is_loopback

SERVE_EXTRA = "pip install 'automod[serve]'"
DEFAULT_PORT = 8765


def require_web_server() -> None:
    """One line naming the extra when the web framework or server is missing."""
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise AutomodError(
            f"automod serve needs a web framework and server ({exc.name} is missing): {SERVE_EXTRA}."
        ) from None


def listening_socket(host: str, port: int) -> socket.socket:
    """A socket bound to host:port (port 0: any free port), or one line saying why it cannot be."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise AutomodError(f"--host {host}: not an address of this machine ({exc.strerror}).") from None
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        reason = "in use by another program" if exc.errno == 98 else (exc.strerror or str(exc))
        raise AutomodError(
            f"cannot listen on {host}:{port} ({reason}): pick another --port (or --port 0 for any free one)."
        ) from None
    sock.listen(64)
    return sock


def model_argument(model: Optional[Path], checkpoint: Path) -> str:
    """What the page's commands pass as --model: a file or a pretrained name as given; a run directory (or none: the
    newest run) as the checkpoint now newest, so a later checkpoint of a run still training changes no pixels."""
    return str(model) if model is not None and not Path(model).is_dir() else str(checkpoint)


def address(host: str, port: int, token: str) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    shown = f"[{shown}]" if ":" in shown else shown
    return f"http://{shown}:{port}/?token={token}"


def serve(
    model: Optional[Path] = typer.Option(
        None,
        "--model",
        "-m",
        help="Checkpoint file, run directory or a named "
        "model such as ffhq256 (see automod models; default: newest run under "
        "./runs).",
    ),
    port: int = typer.Option(
        DEFAULT_PORT, "--port", min=0, max=65535, help="Port to listen on (0: any free one)."
    ),
    host: str = typer.Option(
        "127.0.0.1",
        "--host",
        help="Address to listen on. The default answers this machine "
        "only; any other (0.0.0.0: every network) lets others reach the page, with a warning.",
    ),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda, cuda:1, ..."),
    align: Optional[bool] = typer.Option(
        None,
        "--align/--no-align",
        help="As in the image commands: align the "
        "largest face first. Default: on for models trained on aligned faces when "
        "the align extra is installed.",
    ),
    open_page: bool = typer.Option(False, "--open", help="Also open the page in the default web browser."),
) -> None:
    """A local web page to add your photos and mix, edit, interpolate and sample them with a model.

    Prints the address to open; it carries a random token that every request must show, and the server answers only
    to this machine unless --host says otherwise. Photos stay in memory and a temporary folder deleted on exit.
    Each view shows the automod command that writes the same picture. Ctrl-C stops the server.

    Example: automod serve --model runs/demo

    Example: automod serve --model ffhq256 --port 9000 --open
    """
    from automod_cli.devices import pick_device

    target = pick_device(device)
    require_web_server()
    sock = listening_socket(host, port)
    try:
        _run(sock, model, target, host, align, open_page, is_loopback(host))
    finally:
        sock.close()


def _run(
    sock: socket.socket,
    model: Optional[Path],
    target,
    host: str,
    align: Optional[bool],
    open_page: bool,
    local: bool,
) -> None:
    import uvicorn

    from automod_cli.serve.app import create_app
    from automod_cli.serve.studio import Studio

    opened = open_model(model, target, 0)
    studio = Studio(opened, model_argument(model, opened.checkpoint), align)
    token = secrets.token_urlsafe(24)
    port = sock.getsockname()[1]
    url = address(host, port, token)
    if not local:
        typer.secho(
            f"warning: listening on {host}, reachable from other machines: anyone who has the address can "
            "use this model and see the photos added.",
            fg="yellow",
            err=True,
        )
    say(f"automod serve: open {url}")
    say("Ctrl-C stops the server and deletes the photos added.")
    if open_page:
        webbrowser.open(url)
    config = uvicorn.Config(create_app(studio, token, host), log_level="warning", lifespan="on")
    try:
        uvicorn.Server(config).run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn shuts down on Ctrl-C, then raises the signal again for its caller
        pass
    finally:
        studio.close()
    say("stopped; the photos added were deleted.")


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
