"""Every `automod …` command the README and docs/ show must still parse: its subcommand exists, its options
exist, and (for the runnable examples in code blocks) click accepts the whole line. Nothing is run."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import typer
import typer.main

from automod_cli.cli import app

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
ENV_PREFIX = re.compile(r"^(?:[A-Z_][A-Z0-9_]*=\S*\s+)+")
INLINE = re.compile(r"`(automod [^`]+)`")
SYNTAX = re.compile(
    r"[\[\]|…{}<>]|\.\.\."
)  # usage synopses (`automod mix A B [--coarse | --mid]`), not commands


def _block_commands(text: str) -> list[str]:
    """The `automod` lines of the fenced code blocks, comments and environment assignments removed."""
    found, fenced = [], False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        command = ENV_PREFIX.sub("", line.strip().removeprefix("$ "))
        if fenced and command.startswith("automod "):
            found.append(re.split(r"\s+#", command, maxsplit=1)[0].strip())
    return found


def _collect() -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    blocks, inline = [], []
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        name = str(doc.relative_to(ROOT))
        blocks += [(name, command) for command in _block_commands(text)]
        inline += [(name, span) for span in INLINE.findall(text)]
    return blocks, inline


BLOCKS, INLINE_SPANS = _collect()
ROOT_COMMAND = typer.main.get_command(app)


def _is_group(command) -> bool:
    return hasattr(command, "get_command")


def _resolve(tokens: list[str]):
    """Walk the command groups along `tokens` (after 'automod'); return the command, its arguments and its path."""
    command, path, rest = ROOT_COMMAND, ["automod"], list(tokens)
    while _is_group(command) and rest and not rest[0].startswith("-"):
        sub = command.get_command(typer.Context(command), rest[0])
        if sub is None:
            raise AssertionError(f"'{' '.join(path)}' has no subcommand '{rest[0]}'")
        command, path, rest = sub, path + [rest[0]], rest[1:]
    return command, rest, " ".join(path)


def _option_names(command) -> set[str]:
    names = set()
    for param in command.params:
        if param.param_type_name == "option":
            names.update(param.opts + param.secondary_opts)
    return names | {"--help"}


def _check_options(command, args: list[str], path: str) -> None:
    known = _option_names(command)
    for arg in args:
        if arg.startswith("-") and not re.fullmatch(r"-\d.*", arg):  # negative numbers are values
            name = arg.split("=", 1)[0]
            assert name in known, f"'{path}' has no option {name}"


def test_the_docs_show_commands():
    # The collection itself must find the README's examples; an empty list would make the tests below vacuous.
    assert len(BLOCKS) > 50 and any(cmd.startswith("automod train") for _, cmd in BLOCKS)
    assert any(cmd.startswith("automod eval compare") for _, cmd in BLOCKS)


@pytest.mark.parametrize("doc,line", BLOCKS, ids=[f"{d}:{c[:60]}" for d, c in BLOCKS])
def test_code_block_command_parses(doc, line):
    command, args, path = _resolve(shlex.split(line)[1:])
    _check_options(command, args, path)
    if _is_group(command):
        assert not args, f"{doc}: '{line}' names no subcommand of '{path}'"
        return
    try:
        command.make_context(path, list(args))
    except typer.TyperException as exc:
        pytest.fail(f"{doc}: '{line}' does not parse: {exc.format_message()}")


@pytest.mark.parametrize("doc,span", INLINE_SPANS, ids=[f"{d}:{s[:60]}" for d, s in INLINE_SPANS])
def test_inline_command_names_exist(doc, span):
    """Inline mentions (`automod eval lpips --crop face`, usage synopses) name real subcommands and options."""
    tokens = [t for t in re.split(r"[\s\[\]()|]+", span) if t][1:]
    words = []
    for token in tokens:  # the subcommand path ends at the first placeholder or option
        if token.startswith("-") or SYNTAX.search(token) or not re.fullmatch(r"[a-z][a-z0-9-]*", token):
            break
        words.append(token)
    command, rest, path = _resolve(words[:1])
    for word in words[1:]:
        if not _is_group(command):
            break
        command, rest, path = _resolve(path.split()[1:] + [word])
    if _is_group(command):  # `automod prep ... --split test`: the subcommand is a placeholder
        return
    options = [
        t.split("=", 1)[0].rstrip(",.") for t in tokens if re.fullmatch(r"--?[a-zA-Z][\w-]*(=\S*)?[,.]?", t)
    ]
    _check_options(command, options, path)


def test_the_checker_catches_drift():
    """The checks fail on a made-up subcommand and a made-up option (so a renamed flag would be caught)."""
    with pytest.raises(AssertionError, match="no subcommand"):
        _resolve(["eval", "no-such-metric"])
    command, args, path = _resolve(["mix", "a.png", "b.png", "--coarsest"])
    with pytest.raises(AssertionError, match="no option --coarsest"):
        _check_options(command, args, path)
    command, args, path = _resolve(["train", "--kimg", "many"])
    with pytest.raises(typer.TyperException):
        command.make_context(path, args)
