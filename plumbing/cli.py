"""Command-line spelling shared by the commands: booleans are `yes`/`no` everywhere, and a preset is shown
the way it is typed (`--g-channels 32 --csm-upsample no`).

Not in the paper.
"""
from __future__ import annotations

import argparse

YES_NO = "yes|no"     # the metavar of every boolean flag


def yes_no(s: str) -> bool:
    """argparse type of a boolean flag: 'yes' -> True, 'no' -> False, anything else an error."""
    if s.lower() not in ("yes", "no"):
        raise argparse.ArgumentTypeError(f"expected yes or no, got {s!r}")
    return s.lower() == "yes"


def spell(value) -> str:
    """A value as typed on the command line: True -> 'yes', False -> 'no', others as str()."""
    return ("yes" if value else "no") if isinstance(value, bool) else str(value)


def flags(settings: dict) -> str:
    """{'g_channels': 32, 'csm_upsample': False} -> '--g-channels 32 --csm-upsample no'."""
    return " ".join(f"--{k.replace('_', '-')} {spell(v)}" for k, v in settings.items())
