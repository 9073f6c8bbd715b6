"""An empty argument, refused before any work, named as the command's help names it."""

from __future__ import annotations

import click

from archiver.cli.common import OneLineUsageError, one_line, wants_json


def refuse_empty(group: click.Group, program: str, args: list[str]) -> None:
    """An empty argument names nothing, yet each command would read it as something (`capture ""`
    as the current folder, `claims --url ""` as no filter, `init ""` as here, `-o ""` as a folder
    once the work is signed): most often a variable a script left unset. Refused before any work,
    naming the option or argument it was given as and the command's help. Arguments are read as
    the command's parser reads them only as far as that takes: an unknown option or command is
    left for click to name."""
    path, command, place, positional = program, group, 0, 0
    while place < len(args):
        arg = args[place]
        if arg == "--":  # what follows is positional alone
            if "" in args[place + 1:]:
                _refuse(path, "an argument after '--' is empty", args)
            return
        if arg.startswith("-") and len(arg) > 1:
            name, equals, value = arg.partition("=") if arg.startswith("--") else (arg, "", "")
            option = next((p for p in command.params if isinstance(p, click.Option)
                           and name in (*p.opts, *p.secondary_opts)), None)
            if option is None:
                return  # no such option: click says so, and where the help is
            takes_value = not option.is_flag and not option.count
            if takes_value and not equals:
                value, place = (args[place + 1] if place + 1 < len(args) else None), place + 1
            if takes_value and value == "":
                _refuse(path, f"{name} is given an empty value", args)
            place += 1
            continue
        if isinstance(command, click.Group):
            subcommand = command.get_command(click.Context(command), arg) if arg else None
            if subcommand is None:
                if arg == "":
                    _refuse(path, "the command's name is empty", args)
                return  # no such command: click says so
            path, command, positional = f"{path} {arg}", subcommand, 0
        elif arg == "":
            named = _argument(command, positional)
            _refuse(path, f"the argument {named.human_readable_name} is empty" if named else "an argument is empty", args)
        elif (named := _argument(command, positional)) is not None and named.nargs != -1:
            positional += 1
        place += 1


def _argument(command: click.Command, index: int) -> click.Argument | None:
    """The command's argument the `index`th positional value is given to (the last one takes
    the rest when it takes any number); None past them."""
    arguments = [p for p in command.params if isinstance(p, click.Argument)]
    if index < len(arguments):
        return arguments[index]
    return arguments[-1] if arguments and arguments[-1].nargs == -1 else None


def _refuse(path: str, what: str, args: list[str]) -> None:
    raise OneLineUsageError(f"{path}: {one_line(what)}: give it a value, or leave it out; see '{path} --help'",
                            None, wants_json(args))
