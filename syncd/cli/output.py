"""What every command shares about its surface: help that shows defaults and examples, the
``-o table|wide|json|yaml`` choice, and node arguments written as Slurm hostlists.

Slurm users type hostlists (``gpu[001-004]``, scontrol(1) "HOSTLIST EXPRESSIONS"), so every
command that takes a node takes any number of them, each a name or a hostlist.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from typing import Any

import hostlist

FORMATS = ("table", "wide", "json", "yaml")


class Help(argparse.RawDescriptionHelpFormatter):
    """Keeps the examples' layout and appends ``(default: X)`` to every option that has one.

    Options whose default is "unset" (None, False, an empty list) say in their own help text
    what happens when they are not given.
    """

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if ("%(default)" in text or default in (None, False, argparse.SUPPRESS)
                or default == [] or not action.option_strings):
            return text
        return f"{text} (default: %(default)s)"


def command(sub: Any, name: str, *, help: str, examples: Iterable[str],
            description: str = "") -> argparse.ArgumentParser:
    """A subcommand whose ``--help`` ends with examples a user can copy."""
    lines = "\n".join(f"  {e}" for e in examples)
    parser: argparse.ArgumentParser = sub.add_parser(
        name, help=help, description=description or help, formatter_class=Help,
        epilog=f"examples:\n{lines}")
    return parser


def add_output(p: argparse.ArgumentParser, formats: tuple[str, ...] = FORMATS) -> None:
    p.add_argument("--output", "-o", choices=formats, default="table", metavar="FORMAT",
                   help=f"output format: {', '.join(formats)} (wide: every column, nothing "
                        "cut short; json and yaml: the daemon's answer as is)")


def add_nodes(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("nodes", nargs="+", metavar="NODE",
                   help=f"{what}: node names or Slurm hostlists, e.g. gpu003 or 'gpu[001-004]'")


def expand(words: Iterable[str]) -> list[str]:
    """Every node named by ``words`` (names and hostlists), once each, in the order given."""
    out: dict[str, None] = {}
    for word in words:
        try:
            names = hostlist.expand_hostlist(word)
        except hostlist.BadHostlist as exc:
            raise ValueError(f"{word!r} is not a node name or hostlist ({exc})") from None
        for name in names:
            out.setdefault(name, None)
    return list(out)


def collapse(names: Iterable[str]) -> str:
    """``gpu001,gpu002,gpu004`` -> ``gpu[001-002,004]``."""
    return str(hostlist.collect_hostlist(list(names)))


def dump(data: object, fmt: str) -> None:
    """Print ``data`` as JSON (indented, keys sorted) or YAML."""
    if fmt == "yaml":
        import yaml

        sys.stdout.write(yaml.safe_dump(data, sort_keys=True, default_flow_style=False))
    else:
        print(json.dumps(data, indent=2, sort_keys=True, default=str))


def table(rows: list[list[str]]) -> str:
    """Columns padded to their widest cell, two spaces apart, like kubectl get."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
                     for r in rows)
