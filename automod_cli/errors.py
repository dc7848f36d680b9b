"""The one error type users see: a sentence saying what was wrong and what to do."""


class AutomodError(Exception):
    """Raised for bad input or an unusable file. The CLI prints it as one red line, exit code 2."""
