"""The one error type users see: a sentence saying what was wrong and what to do."""

import sys
from contextlib import contextmanager
from typing import Iterator


class AutomodError(Exception):
    """Raised for bad input or an unusable file. The CLI prints it as one red line, exit code 2."""


@contextmanager
def one_line_errors() -> Iterator[None]:
    """For scripts over the Python API (examples/): an AutomodError inside the block is printed as one line on stderr
    and ends the process with exit code 2, as the automod commands do."""
    try:
        yield
    except AutomodError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
