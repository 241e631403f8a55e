"""What a studio request may ask for, checked: each field by a small pure function that returns the value or
raises StudioError with one line saying what to change (the page shows it; the API answers 400).

    {"seed": 42 | "new", "genre": "house", "truncation": 1.0, "bpm": 120, "n": 8, "spread": 0.3, "bars": 8}

Not in the paper: the limits below are the studio's, each with its reason.
"""
from __future__ import annotations

import math
import random
import re

NEW = "new"                            # the seed that asks for a random one
SEED_MAX = 2 ** 31 - 1                 # seeds the page's number box and JSON hold exactly; "new" draws below it
BPM_RANGE = (60.0, 200.0)              # the page's tempo range: a 120-BPM bar stretched by at most x2 / x0.6
TRUNCATION_MAX = 2.0                   # psi in (0, 2]: 0 is one average loop, beyond 2 the styles leave training
MAX_BARS = 64                          # a morph's length: 64 bars at 120 BPM is 2 min 8 s
MAX_VARIATIONS = 16                    # one row of relatives on the page
MAX_SPREAD = 3.0                       # conditional.variation_latents: spread 3 is already a stranger


class StudioError(ValueError):
    """A request the studio refuses: one line saying what to change (HTTP 400)."""


# ---------------------------------------------------------------------------------------------
# Checking what a request asks for: each a small pure function, one line on refusal
# ---------------------------------------------------------------------------------------------
def parse_seed(value, rng: random.Random | None = None) -> int:
    """An integer seed 0..SEED_MAX (a JSON number or its digits); "new", "" or nothing draws one."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", NEW)):
        return (rng or random.SystemRandom()).randint(0, SEED_MAX)
    if isinstance(value, str) and re.fullmatch(r"\s*\+?\d+\s*", value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise StudioError(f"seed must be a whole number from 0 to {SEED_MAX}, or '{NEW}' for a random one; "
                          f"got {value!r}")
    if not 0 <= value <= SEED_MAX:
        raise StudioError(f"seed must be from 0 to {SEED_MAX}, or '{NEW}'; got {value}")
    return value


def parse_number(value, what: str) -> float:
    """A finite JSON number, or a string of one (what a form sends)."""
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise StudioError(f"{what} must be a number, got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise StudioError(f"{what} must be a number, got {value!r}")
    return float(value)


def parse_whole(value, what: str, low: int, high: int) -> int:
    """A whole number low..high (a float with a fraction is refused, 8.0 is 8)."""
    x = parse_number(value, what)
    if x != int(x) or not low <= x <= high:
        raise StudioError(f"{what} must be a whole number from {low} to {high}, got {value!r}")
    return int(x)


def parse_truncation(value) -> float:
    """psi in (0, TRUNCATION_MAX]."""
    psi = parse_number(value, "truncation")
    if not 0 < psi <= TRUNCATION_MAX:
        raise StudioError(f"truncation must be above 0 and at most {TRUNCATION_MAX:g} (1 = untruncated), got {psi:g}")
    return psi


def parse_bpm(value) -> float:
    """Beats per minute within BPM_RANGE."""
    bpm = parse_number(value, "bpm")
    if not BPM_RANGE[0] <= bpm <= BPM_RANGE[1]:
        raise StudioError(f"bpm must be from {BPM_RANGE[0]:g} to {BPM_RANGE[1]:g}, got {bpm:g}")
    return bpm


def parse_spread(value) -> float:
    spread = parse_number(value, "spread")
    if not 0 <= spread <= MAX_SPREAD:
        raise StudioError(f"spread must be from 0 to {MAX_SPREAD:g} (0.3 = close relatives), got {spread:g}")
    return spread


def parse_genre(value, genres: list[str] | None) -> str | None:
    """One of the checkpoint's genres (a conditional checkpoint needs one); nothing for an unconditional one."""
    given = value.strip() if isinstance(value, str) else value
    if not genres:
        if given not in (None, ""):
            raise StudioError(f"this checkpoint is unconditional: it has no genres, so leave genre out "
                              f"(got {given!r})")
        return None
    if given in (None, ""):
        raise StudioError(f"genre: this checkpoint is conditional, pick one of: {', '.join(genres)}")
    if given not in genres:
        raise StudioError(f"unknown genre {given!r}; this checkpoint knows: {', '.join(genres)}")
    return given


def one_line(e: BaseException) -> str:
    """The first line of an exception's message, or its class name."""
    return (str(e).strip().splitlines() or [type(e).__name__])[0]


def body_value(body: dict, key: str, default=None):
    """body[key], or the default when it is missing or null."""
    value = body.get(key)
    return default if value is None else value
