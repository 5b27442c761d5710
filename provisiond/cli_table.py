"""The command table of `provisiond`: commands declared once, the parser and dispatch built from it.

A table is a sequence of `Group` (a word such as ``user`` that only gathers subcommands) and
`Command` entries (``"user list"`` or ``"resync"``): a command's words, its help, its arguments
and what runs it. `build_parser` turns the table into the argparse tree in table order and marks
each command's own parser with its entry, so `command_of` answers the very entry whose words the
command line matched: the parser and the dispatch cannot name different commands.

Two kinds of command run differently: an `action` is an admin use case (the services in, a
JSON-able result out, ``None`` for nothing to print); an `operator` step gets the settings and
returns the exit code itself (the server, the schema, the keyring, backups, DHCP, render).
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from provisiond.services import Services
from provisiond.settings import Settings

AdminAction = Callable[[Services, argparse.Namespace], Awaitable[Any]]
OperatorAction = Callable[[Settings, argparse.Namespace], int]
AsyncOperator = Callable[[Settings, argparse.Namespace], Coroutine[Any, Any, int]]

TOP_DEST = "command"  # args.command: the first word (cli_ops.backup_command reads it)
SUB_DEST = "sub"  # args.sub: the second word of a grouped command
_ENTRY = "cli_table_command"  # the namespace attribute holding the matched Command


@dataclass(frozen=True)
class Arg:
    """One ``add_argument`` call: its name or flags, and its keyword arguments."""

    names: tuple[str, ...]
    options: Mapping[str, Any] = field(default_factory=dict)


def arg(*names: str, **options: Any) -> Arg:
    """`Arg` with `add_argument`'s own signature."""
    return Arg(names, options)


@dataclass(frozen=True)
class OneOf:
    """Arguments of which at most one (exactly one when `required`) may be given."""

    args: tuple[Arg, ...]
    required: bool = False


PAGING = (arg("--limit", type=int), arg("--offset", type=int))


@dataclass(frozen=True)
class Group:
    """A first word that gathers subcommands (``user`` for ``user list``...)."""

    name: str
    help: str


@dataclass(frozen=True)
class Command:
    """One command: its words, help, arguments and the one function that runs it.

    `paging` appends ``--limit`` and ``--offset`` after the other arguments.
    """

    name: str
    help: str
    args: tuple[Arg | OneOf, ...] = ()
    action: AdminAction | None = None
    operator: OperatorAction | None = None
    paging: bool = False

    def __post_init__(self) -> None:
        if len(self.words) not in (1, 2):
            raise ValueError(f"command {self.name!r}: one word, or a group and a word")
        if (self.action is None) == (self.operator is None):
            raise ValueError(f"command {self.name!r}: give exactly one of action and operator")

    @property
    def words(self) -> list[str]:
        """``["user", "list"]`` for ``user list``."""
        return self.name.split()

    @property
    def all_args(self) -> tuple[Arg | OneOf, ...]:
        """The declared arguments, then paging's when asked for."""
        return self.args + (PAGING if self.paging else ())


Entry = Group | Command


def admin(
    name: str, help: str, action: AdminAction, *args: Arg | OneOf, paging: bool = False
) -> Command:
    """An admin use case: `action` gets the services and returns what to print as JSON."""
    return Command(name, help, args, action=action, paging=paging)


def operation(name: str, help: str, run: OperatorAction, *args: Arg | OneOf) -> Command:
    """An operator step: `run` gets the settings and returns the exit code."""
    return Command(name, help, args, operator=run)


def blocking(step: AsyncOperator) -> OperatorAction:
    """An operator step written as a coroutine function, run on its own event loop."""

    def run(settings: Settings, args: argparse.Namespace) -> int:
        return asyncio.run(step(settings, args))

    run.__doc__ = step.__doc__
    return run


def commands(table: Iterable[Entry]) -> list[Command]:
    """The commands of a table, in order (its groups left out)."""
    return [entry for entry in table if isinstance(entry, Command)]


def _add_args(parser: argparse.ArgumentParser, specs: Iterable[Arg | OneOf]) -> None:
    for spec in specs:
        if isinstance(spec, OneOf):
            group = parser.add_mutually_exclusive_group(required=spec.required)
            for one in spec.args:
                group.add_argument(*one.names, **one.options)
        else:
            parser.add_argument(*spec.names, **spec.options)


def _subparsers(parser: argparse.ArgumentParser, dest: str) -> Any:
    return parser.add_subparsers(dest=dest, required=True)


def build_parser(
    table: Iterable[Entry], *, prog: str, description: str, options: Iterable[Arg] = ()
) -> argparse.ArgumentParser:
    """The argparse tree of `table`: `options` on the root, then every entry in table order.

    Refuses (ValueError) a command whose group is not declared before it, a group declared
    twice, a word used as both a command and a group, and a command declared twice.
    """
    root = argparse.ArgumentParser(prog=prog, description=description)
    _add_args(root, options)
    top = _subparsers(root, TOP_DEST)
    groups: dict[str, Any] = {}
    seen: set[str] = set()
    for entry in table:
        if entry.name in seen:
            raise ValueError(f"{entry.name!r} is declared twice")
        seen.add(entry.name)
        if isinstance(entry, Group):
            parser = top.add_parser(entry.name, help=entry.help)
            groups[entry.name] = _subparsers(parser, SUB_DEST)
            continue
        if len(entry.words) == 1:
            parser = top.add_parser(entry.name, help=entry.help)
        elif entry.words[0] in groups:
            parser = groups[entry.words[0]].add_parser(entry.words[1], help=entry.help)
        else:
            raise ValueError(f"{entry.name!r}: declare Group({entry.words[0]!r}) before it")
        _add_args(parser, entry.all_args)
        parser.set_defaults(**{_ENTRY: entry})
    return root


def command_of(args: argparse.Namespace) -> Command:
    """The table entry whose parser read `args`."""
    entry = getattr(args, _ENTRY, None)
    if not isinstance(entry, Command):
        raise LookupError("these arguments were not parsed by a command table's parser")
    return entry
