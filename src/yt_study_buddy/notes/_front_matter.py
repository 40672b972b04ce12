"""YAML front matter: the ``---`` block a Markdown note opens with, written and read back.

Written by PyYAML's safe dumper, so whatever a title holds (quotes, colons, ``#``, a leading
``-``, words YAML reads as booleans or dates) comes back as the same string, and no line inside
the block can be taken for its end. Obsidian and its Dataview plugin read YAML 1.2, which takes
a few plain scalars as numbers that PyYAML's YAML 1.1 leaves as strings (``1e3``, ``0x1F``):
those strings are quoted too.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

_FENCE = "---"
_YAML12_NUMBER = re.compile(
    r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|0o[0-7]+|0x[0-9a-fA-F]+"
    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)"
)


class _Dumper(yaml.SafeDumper):
    """PyYAML's safe dumper, quoting the strings that YAML 1.2 would read as numbers."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "'" if _YAML12_NUMBER.fullmatch(value) else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


def dump_front_matter(fields: dict[str, Any]) -> str:
    """``fields`` (in their order, long values on one line) between ``---`` lines."""
    dumped = yaml.dump(fields, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=1_000_000_000)
    return f"{_FENCE}\n{dumped}{_FENCE}\n"


def read_front_matter(text: str) -> tuple[dict[str, Any], str] | None:
    """A note's front matter, parsed, and the Markdown after it; None if it has none (a note
    written before front matter) or if the block is not a YAML mapping."""
    lines = text.split("\n")
    fences = [index for index, line in enumerate(lines) if line.rstrip("\r") == _FENCE][:2]
    if len(fences) < 2 or fences[0] != 0:
        return None
    end = fences[1]
    try:
        fields = yaml.safe_load("\n".join(lines[1:end]))
    except yaml.YAMLError:
        return None
    if not isinstance(fields, dict):
        return None
    return fields, "\n".join(lines[end + 1 :])
