"""The `automod` console script and `python -m automod_cli`: Ctrl-C while the command's modules are still being
imported (torch takes seconds) ends quietly with exit code 130 instead of a KeyboardInterrupt traceback."""

from __future__ import annotations

import sys

from automod_cli import __version__


def main() -> int:
    if sys.argv[1:] == ["--version"]:  # answered without importing the commands (and torch): instant
        print(f"automod {__version__}")
        return 0
    try:
        from automod_cli.cli import main as cli_main  # noqa: PLC0415 -- the point of this module
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return 130
    try:
        return cli_main()
    except KeyboardInterrupt:  # outside the commands' own handling (they keep partial work and say so)
        print(file=sys.stderr)
        return 130
