"""The command table: every entry documented, and the parser and the dispatch built from it agree.

The parser is built from `provisiond.cli.TABLE` and each command line is resolved back to its
entry; a table that would let them disagree (a command twice, a group missing or repeated, a
command with no or two runners) is refused when the parser is built.
"""

from __future__ import annotations

import argparse
from typing import Any

import pytest

from provisiond import cli, cli_fleet
from provisiond.cli_table import (
    SUB_DEST,
    TOP_DEST,
    Arg,
    Command,
    Group,
    OneOf,
    admin,
    arg,
    build_parser,
    command_of,
    commands,
    operation,
)

COMMANDS = commands(cli.TABLE)


async def _nothing(s: Any, a: argparse.Namespace) -> None:
    return None


def _value(spec: Arg) -> list[str]:
    """A value the parser accepts for `spec` (the service may still refuse it)."""
    if spec.options.get("action") in ("store_true", "store_false"):
        return []
    choices = spec.options.get("choices")
    if choices:
        return [str(next(iter(choices)))]
    return ["1" if spec.options.get("type") is int else "x"]


def minimal_argv(command: Command) -> list[str]:
    """The command's words, then every required argument with an acceptable value."""
    argv = list(command.words)
    for spec in command.all_args:
        if isinstance(spec, OneOf):
            if spec.required:  # the first of the group stands for it
                argv += [spec.args[0].names[0], *_value(spec.args[0])]
        elif not spec.names[0].startswith("-"):
            if spec.options.get("nargs") not in ("?", "*"):
                argv += _value(spec)
        elif spec.options.get("required"):
            argv += [spec.names[0], *_value(spec)]
    return argv


def parser_leaves(parser: argparse.ArgumentParser, words: tuple[str, ...] = ()) -> set[str]:
    """Every command line path the parser accepts, as ``"user list"``."""
    found: set[str] = set()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                found |= parser_leaves(child, (*words, name))
    return found or {" ".join(words)}


def test_the_table_holds_the_fleet_commands_and_each_command_once() -> None:
    names = [c.name for c in COMMANDS]
    assert len(names) == len(set(names))
    assert {c.name for c in commands(cli_fleet.TABLE)} <= set(names)
    assert {"serve", "render", "user list", "firmware add", "export"} <= set(names)


@pytest.mark.parametrize("entry", cli.TABLE, ids=lambda e: e.name)
def test_every_entry_has_help_shown_by_its_parent(
    entry: Group | Command, capsys: pytest.CaptureFixture[str]
) -> None:
    assert entry.help.strip(), f"{entry.name} has no help text"
    parent = entry.name.split()[:-1]
    with pytest.raises(SystemExit) as exited:
        cli.build_parser().parse_args([*parent, "--help"])
    assert exited.value.code == 0
    listing = " ".join(capsys.readouterr().out.split())
    assert f"{entry.name.split()[-1]} {' '.join(entry.help.split())}" in listing


def test_parser_commands_are_the_table_commands() -> None:
    assert parser_leaves(cli.build_parser()) == {c.name for c in COMMANDS}


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c.name)
def test_each_command_line_resolves_to_its_own_entry(command: Command) -> None:
    args = cli.build_parser().parse_args(minimal_argv(command))
    assert command_of(args) is command
    parsed = [getattr(args, TOP_DEST), getattr(args, SUB_DEST, None)]
    assert parsed == [*command.words, None][:2]  # what cli_ops reads as args.command, args.sub


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c.name)
def test_paging_commands_and_only_they_take_limit_and_offset(command: Command) -> None:
    argv = [*minimal_argv(command), "--limit", "5", "--offset", "10"]
    if not command.paging:
        with pytest.raises(SystemExit):
            cli.build_parser().parse_args(argv)
        return
    args = cli.build_parser().parse_args(argv)
    assert (args.limit, args.offset) == (5, 10)


def test_namespace_from_another_parser_is_refused() -> None:
    with pytest.raises(LookupError):
        command_of(argparse.Namespace(command="user", sub="list"))


def _build(*table: Group | Command) -> argparse.ArgumentParser:
    return build_parser(table, prog="t", description="test")


def test_build_refuses_a_table_the_dispatch_could_misread() -> None:
    one = admin("x", "x", _nothing)
    with pytest.raises(ValueError, match="declared twice"):
        _build(one, admin("x", "again", _nothing))
    with pytest.raises(ValueError, match="declared twice"):
        _build(Group("g", "g"), admin("g a", "a", _nothing), Group("g", "g"))
    with pytest.raises(ValueError, match="declared twice"):
        _build(one, Group("x", "a group named like a command"))
    with pytest.raises(ValueError, match=r"declare Group\('g'\)"):
        _build(admin("g a", "a", _nothing), Group("g", "g"))


def test_a_command_has_one_runner_and_one_or_two_words() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        Command("x", "x")
    with pytest.raises(ValueError, match="exactly one"):
        Command("x", "x", action=_nothing, operator=lambda st, a: 0)
    with pytest.raises(ValueError, match="one word"):
        admin("a b c", "x", _nothing)


def test_built_parser_carries_arguments_groups_and_runners() -> None:
    def step(settings: Any, args: argparse.Namespace) -> int:
        return 3

    parser = _build(
        Group("g", "a group"),
        admin("g a", "a", _nothing, arg("id", type=int), paging=True),
        operation("b", "b", step, OneOf((arg("--p"), arg("--q")), required=True)),
    )
    args = parser.parse_args(["g", "a", "7", "--limit", "2"])
    assert (args.id, args.limit, args.offset) == (7, 2, None)
    assert command_of(args).action is _nothing
    args = parser.parse_args(["b", "--q", "v"])
    assert command_of(args).operator is step
    assert (args.p, args.q) == (None, "v")
    with pytest.raises(SystemExit):
        parser.parse_args(["b", "--p", "1", "--q", "2"])
    with pytest.raises(SystemExit):
        parser.parse_args(["b"])
