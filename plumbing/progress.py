"""Progress for a person and for a log file: a tqdm bar when the output is a terminal, else one plain
line every `every` steps (and a last one at the end, unless leave=False), with the same figures.

tqdm writes every refresh into a redirected file (hundreds of fragments on one line per run) and
torchrun's ranks interleave theirs, so: only a terminal gets the bar; only rank 0 (RANK unset or 0)
writes at all. Usage, as with tqdm:

    with Progress(total=steps, initial=step, desc="drum_scnn_loop", every=50) as bar:
        ...; bar.update(1); bar.set_postfix(loss_d=f"{d:.3f}")
"""
from __future__ import annotations

import os
import sys
import time

from tqdm import tqdm

LOG_EVERY = 50       # steps between two plain lines when the output is not a terminal


def is_main_rank() -> bool:
    """True outside torchrun and on its global rank 0: the one process that reports."""
    return os.environ.get("RANK", "0") == "0"


class Progress:
    """A tqdm bar on a terminal; plain lines `desc: step n/total (pct), x it/s, k=v ...` elsewhere."""

    def __init__(self, total: int | None = None, initial: int = 0, desc: str = "", unit: str = "it",
                 every: int = LOG_EVERY, enabled: bool = True, file=None, leave: bool = True):
        self.file = file if file is not None else sys.stderr
        self.enabled = enabled and is_main_rank()
        self.total, self.n, self.desc, self.unit, self.every = total, initial, desc, unit, max(1, int(every))
        self.leave = leave                # False: a passing bar (one epoch's batches): no closing line in a log
        self.postfix: dict[str, str] = {}
        self._start_n, self._t0, self._last_line_n = initial, time.monotonic(), initial
        isatty = getattr(self.file, "isatty", lambda: False)()
        self.bar = (tqdm(total=total, initial=initial, desc=desc, unit=unit, file=self.file, dynamic_ncols=True,
                         leave=leave) if self.enabled and isatty else None)

    def update(self, n: int = 1) -> None:
        self.n += n
        if self.bar is not None:
            self.bar.update(n)
        elif self.enabled and self.n - self._last_line_n >= self.every:
            self._line()

    def set_postfix(self, ordered_dict: dict | None = None, **kwargs) -> None:
        self.postfix = {k: str(v) for k, v in {**(ordered_dict or {}), **kwargs}.items()}
        if self.bar is not None:
            self.bar.set_postfix(self.postfix)

    def line(self) -> str:
        """The plain line for the current state (what a log file gets)."""
        done = self.n - self._start_n
        rate = done / max(time.monotonic() - self._t0, 1e-9)
        where = f"{self.n}/{self.total} ({100 * self.n / self.total:.0f} %)" if self.total else f"{self.n}"
        extra = "".join(f", {k}={v}" for k, v in self.postfix.items())
        return f"{self.desc}: {self.unit} {where}, {rate:.2f} {self.unit}/s{extra}"

    def _line(self) -> None:
        print(self.line(), file=self.file, flush=True)
        self._last_line_n = self.n

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        elif self.enabled and self.leave and self.n != self._last_line_n:
            self._line()

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
