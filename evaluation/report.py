"""Table 1 and Figure 4 as text (paper Section 5, Table 1 and Figure 4): results.csv lines in, markdown out.

reproduce.py appends one CSV line per evaluated snapshot (plumbing.files.read_csv gives them as dicts of strings).
Here they are grouped by

    (row, seed, n)    one training run of one row, its snapshots evaluated with n generated loops. A re-run
                      with another -n is another key: it is never averaged with the first.

The last snapshot of a key is its final value. A table line is (row, n): over its seeds' final values the mean
± half-width of the 95 % Student-t interval (evaluation.metrics.mean_interval), and per key metric a verdict
against the baseline of the same setting at the same n, by Welch's t-test over the seeds' final values
(evaluation.metrics.welch_verdict). Lines with row = real_floor are the real-vs-real value of every distance
(n real training loops against the held-out reference): the floor a row can reach at that n.

Everything the header says comes from the CSV, never from the command line that asks for the report. Also here:
`write_generated`, which puts a generated block between two markers of a docs page. Figure 4 is figure4.py.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from evaluation.metrics import mean_interval, welch_verdict
from plumbing.files import atomic_write

LEVEL = 0.95               # the intervals over seeds: 95 %, Student t
ALPHA = 0.05               # Welch's t-test at the 5 % level
FLOOR_ROW = "real_floor"   # CSV lines of N real loops against the held-out reference (no generator)
BASELINE = "stylegan2"     # Table 1 B: the plain StyleGAN2 (no feature network), every row's reference
# Table 1's rows; what follows such a name in a row's name is its setting ("loop_cond" = loop + "_cond"), and
# the baseline of that setting is BASELINE + the same suffix ("stylegan2_cond").
FEATURE_ROWS = ("stylegan2", "general", "loop", "mtat", "general_loop", "general_mtat")
HEADLINE = "KAD_musicnn_mel"   # kernel distance on musicnn's MSD embedding, which no discriminator uses
TIME_KEYS = ("idle_minutes", "train_minutes")  # budget-equivalent minutes; an older CSV has only the run's own
ROUNDING = 1e-9            # relative differences below this are float rounding (a mean of equal values), not data

# (column, cell format). Columns no line has are left out; FAD columns carry N in their header (FAD is biased
# in N, so it compares only at one N).
TABLE_METRICS = [("KAD_musicnn_mel", ".3g"), ("FAD_musicnn_mel", ".3g"), ("FADinf_musicnn_mel", ".3g"),
                 ("FAD_vgg16rand", ".3g"), ("IS", ".3g"), ("density", ".2f"), ("coverage", ".2f"),
                 ("copies", ".3g"), ("loop_fake", ".2f"), ("KAD_musicnn", ".3g"), ("FAD_musicnn", ".3g"),
                 ("FADinf_musicnn", ".3g"), ("cond_acc", ".2f"), ("cond_acc_min", ".2f")]
# The key metrics, each with the verdict's direction: 'lower' or 'higher' is better, or 'one': closer to 1 is
# better (density is 1 when the fakes sit in the real balls as densely as the reals; above 1 is no better).
# The labels head markdown columns, where a pipe is written \|.
VERDICTS = [("KAD_musicnn_mel", "lower", "KAD"), ("coverage", "higher", "C"), ("density", "one", r"\|D-1\|")]
CONDITIONAL = [("cond_acc", "genre accuracy"), ("cond_acc_min", "worst genre")]   # with _lo, _hi: Wilson


class ReportError(ValueError):
    """Bad input to a report: its message is one line that says what to do."""


def value(line: dict, key: str) -> float:
    """A column of a CSV line as a float; NaN where it is absent, empty or not a number."""
    try:
        return float(line.get(key, ""))
    except (TypeError, ValueError):
        return float("nan")


def is_distance(column: str) -> bool:
    """KAD_*, FAD_*, FADinf_* columns (not their _lo/_hi/_p companions): a real-vs-real floor exists for them."""
    return column.startswith(("KAD_", "FAD_", "FADinf_")) and not column.endswith(("_lo", "_hi", "_p"))


def score(v: float, direction: str) -> float:
    """A value in the space it is compared in: lower is better after this ('one': |v - 1|; 'higher': -v)."""
    return abs(v - 1) if direction == "one" else (-v if direction == "higher" else v)


# ---------------------------------------------------------------------------------------------------------------
# Reading: CSV lines -> runs keyed by (row, seed, n)
# ---------------------------------------------------------------------------------------------------------------
@dataclass
class Results:
    runs: dict = field(default_factory=dict)     # (row, seed, n) -> [snapshot lines], oldest first
    floors: list = field(default_factory=list)   # the real_floor lines
    time_key: str = "idle_minutes"                # the x axis of Reaches and of the figure
    notes: list = field(default_factory=list)    # what was assumed to read an older CSV
    lines: list = field(default_factory=list)    # every line, as read (plus the seed and n assumed)

    def table_keys(self) -> list[tuple[str, int]]:
        """(row, n) of every table line: Table 1's rows in the paper's order, then the others as they first appear in
        the CSV; then by n."""
        order = list(dict.fromkeys(r for r, _, _ in self.runs))
        rank = {r: FEATURE_ROWS.index(r) if r in FEATURE_ROWS else len(FEATURE_ROWS) + order.index(r) for r in order}
        return sorted({(r, n) for r, _, n in self.runs}, key=lambda k: (rank[k[0]], k[1]))

    def seeds(self, row: str, n: int) -> list[int]:
        return sorted(s for r, s, m in self.runs if (r, m) == (row, n))

    def finals(self, row: str, n: int, key: str) -> list[float]:
        """The final (last snapshot) value of `key` of each seed of (row, n); seeds without it left out."""
        vals = [value(self.runs[(row, s, n)][-1], key) for s in self.seeds(row, n)]
        return [v for v in vals if not math.isnan(v)]


def _int(line: dict, key: str, what: str) -> int:
    try:
        return int(float(line[key]))
    except (KeyError, TypeError, ValueError):
        raise ReportError(f"results.csv: a line of row '{line.get('row')}' has no {what} ('{key}' is "
                          f"'{line.get(key, '')}'); re-run reproduce.py into a new --out folder") from None


def read_results(lines: list[dict]) -> Results:
    """reproduce.py's results.csv lines -> Results. An older CSV (no `seed` column) is read as seed 0 with N from
    its `n_fake` column, and the table says so; one with neither, or without the columns every version wrote
    (row, ckpt), is refused with a ReportError."""
    res = Results()
    if not lines:
        return res
    fields = set(lines[0])
    missing = [c for c in ("row", "ckpt") if c not in fields]
    if missing or not any(k in fields for k, _ in TABLE_METRICS):
        raise ReportError(f"results.csv has an unknown schema (no {', '.join(missing) or 'known metric'} column): "
                          "it was not written by this version of reproduce.py; re-run reproduce.py into a new --out "
                          "folder")
    if "seed" not in fields:
        if "n_fake" not in fields:
            raise ReportError("results.csv has neither a seed nor an n_fake column (an old reproduce.py): move it "
                              "aside and run reproduce.py again with the same --rows to evaluate the runs anew")
        res.notes.append("This results.csv predates seeds: every line is read as seed 0 with N from its n_fake "
                         "column.")
        lines = [{**ln, "seed": "0", "n": ln.get("n_fake", "")} for ln in lines]
    elif "n" not in fields:
        raise ReportError("results.csv has a seed column but no n (another version of reproduce.py): re-run "
                          "reproduce.py into a new --out folder")
    idle, own = TIME_KEYS
    res.time_key = idle if any(not math.isnan(value(ln, idle)) for ln in lines) else own
    if res.time_key != idle:
        res.notes.append(f"No line has {idle} (no idle-machine pace was measured): minutes are each run's own "
                         f"{own}, which compare only within one run of reproduce.py.")
    res.lines = lines
    for i, ln in enumerate(lines):
        if ln["row"] == FLOOR_ROW:
            res.floors.append(ln)
            continue
        key = (ln["row"], _int(ln, "seed", "seed"), _int(ln, "n", "N"))
        res.runs.setdefault(key, []).append((i, ln))
    for key, snaps in res.runs.items():
        last = {ln.get("ckpt") or i: (i, ln) for i, ln in snaps}.values()   # a snapshot evaluated twice: its last line
        res.runs[key] = [ln for _, ln in sorted(last, key=lambda p: _order(p[1], p[0], res.time_key))]
    return res


def _order(line: dict, index: int, time_key: str) -> tuple:
    """Snapshots in training order: by step, then minutes, then their place in the CSV."""
    step, t = value(line, "step"), value(line, time_key)
    return (math.inf if math.isnan(step) else step, math.inf if math.isnan(t) else t, index)


# ---------------------------------------------------------------------------------------------------------------
# Baselines, verdicts, Reaches
# ---------------------------------------------------------------------------------------------------------------
def setting_of(row: str) -> str | None:
    """The suffix of a row's name after its Table-1 row ('loop_cond' -> '_cond', 'general' -> ''); None when the
    name starts with no Table-1 row. The longest match wins ('general_loop_cond' -> '_cond')."""
    for base in sorted(FEATURE_ROWS, key=len, reverse=True):
        if row == base or row.startswith(base + "_"):
            return row[len(base):]
    return None


def baseline_of(row: str) -> str | None:
    """The baseline of the row's setting: plain rows -> 'stylegan2', '*_cond' -> 'stylegan2_cond',
    '*_shiftcutout' -> 'stylegan2_shiftcutout'; None for a name outside that scheme."""
    suffix = setting_of(row)
    return None if suffix is None else BASELINE + suffix


def verdict(row_values: list[float], base_values: list[float], direction: str) -> str:
    """Welch's t over the seeds' final values: 'ahead' / 'not distinguishable' / 'behind' (the row against its
    baseline); a side with fewer than two seeds cannot be tested."""
    if len(row_values) < 2 or len(base_values) < 2:
        return "untested (1 seed)" if row_values and base_values else "-"
    a = [score(v, direction) for v in row_values]
    b = [score(v, direction) for v in base_values]
    return welch_verdict(a, b, lower_is_better=True, alpha=ALPHA)


def baseline_target(res: Results, base: str, n: int, key: str, direction: str) -> float | None:
    """The baseline's mean over seeds of each seed's BEST value of `key` (in score space, lower is better), or
    None. Its best, not its last: one late dip of a seed would otherwise make any row match it at once."""
    bests = []
    for s in res.seeds(base, n):
        vals = [score(value(ln, key), direction) for ln in res.runs[(base, s, n)]]
        vals = [v for v in vals if not math.isnan(v)]
        if vals:
            bests.append(min(vals))
    return float(np.mean(bests)) if bests else None


def first_reach(snapshots: list[dict], key: str, target: float, direction: str, time_key: str) -> float | None:
    """Minutes (`time_key`) of the first snapshot at least as good as `target` (score space), else None."""
    for ln in snapshots:
        if score(value(ln, key), direction) <= target + ROUNDING * max(1.0, abs(target)):      # False for NaN
            return value(ln, time_key)
    return None


def reaches(res: Results, row: str, n: int, key: str, direction: str) -> str:
    """Per seed, the minutes at which the row first matched its baseline's mean best value: '5.0, 10.0, -'."""
    base = baseline_of(row)
    target = None if base is None else baseline_target(res, base, n, key, direction)
    if target is None:
        return "-"
    times = [first_reach(res.runs[(row, s, n)], key, target, direction, res.time_key) for s in res.seeds(row, n)]
    return ", ".join("-" if t is None or math.isnan(t) else f"{t:.1f}" for t in times)


# ---------------------------------------------------------------------------------------------------------------
# Markdown
# ---------------------------------------------------------------------------------------------------------------
def fmt(v: float, spec: str = ".3g") -> str:
    return "-" if v is None or math.isnan(v) else format(v, spec)


def fmt_interval(values: list[float], spec: str = ".3g") -> str:
    """'mean ± half-width' of the 95 % t interval, both to the half-width's second significant digit; one value
    as it is; none as '-'."""
    if not values:
        return "-"
    mean, lo, hi = mean_interval(values, level=LEVEL)
    half = (hi - lo) / 2
    if math.isnan(half):
        return fmt(mean, spec)
    if half <= ROUNDING * max(1.0, abs(mean)):
        return f"{format(mean, spec)} ± 0"
    decimals = max(0, 1 - math.floor(math.log10(half)))
    return f"{mean:.{decimals}f} ± {half:.{decimals}f}"


def distinct(lines: list[dict], key: str) -> list[str]:
    """The non-empty values of one CSV column over `lines`, each once, in order of first appearance."""
    return list(dict.fromkeys(ln[key].strip() for ln in lines if (ln.get(key) or "").strip()))


def said(lines: list[dict], key: str, what: str) -> str:
    """'<what> v1, v2' for a column's distinct values (dates: first to last when more than two)."""
    vals = distinct(lines, key)
    if key == "date":
        vals = sorted(vals)
        if len(vals) > 2:
            return f"{what} {vals[0]} to {vals[-1]}"
    return f"{what} {', '.join(vals)}" if vals else f"{what} not recorded"


def floors_at(res: Results, n: int) -> str:
    """'KAD_musicnn_mel 0.0012, FAD_musicnn_mel 1.2' of the real_floor lines at N = n (mean over their seeds),
    or 'not measured'."""
    mine = [ln for ln in res.floors if value(ln, "n") == n]
    cols = [c for c in dict.fromkeys(k for ln in mine for k in ln) if is_distance(c)]
    cells = [f"{c} {fmt_interval([v for v in (value(ln, c) for ln in mine) if not math.isnan(v)])}" for c in cols]
    cells = [c for c in cells if not c.endswith(" -")]
    return ", ".join(cells) if cells else "not measured"


def finals_of(res: Results) -> list[dict]:
    """The last snapshot line of every run. A run's budget is its last line's: a run resumed to a larger budget
    (reproduce.py with a larger --minutes into the same --out) keeps its earlier snapshots, the very ones an
    unbroken run of the larger budget takes where they fall on its schedule (resume is exact)."""
    return [snaps[-1] for snaps in res.runs.values()]


def header(res: Results) -> str:
    """The paragraph above the table: what was measured, where and how, all from the CSV's own lines."""
    runs = [ln for snaps in res.runs.values() for ln in snaps]
    ns = sorted({n for _, _, n in res.runs})
    seeds = sorted({s for _, s, _ in res.runs})
    budget = [said(finals_of(res), "budget_minutes", "Budget per row:") + " minutes"]
    if distinct(runs, "budget_steps"):
        budget.append("steps per row in the table")
    machines = ", ".join(distinct(runs, "machine")) or "a machine not recorded"
    parts = [
        f"{said(runs + res.floors, 'date', 'Measured')} on {machines}; {said(runs, 'threads', 'threads')}; "
        f"{said(runs, 'clock', 'clock')}.",
        " (".join(budget) + (")" if len(budget) > 1 else "") + ".",
        f"N generated: {', '.join(map(str, ns)) or '-'}; {said(runs, 'n_real', 'N real (held-out reference):')}.",
        f"Seeds: {', '.join(map(str, seeds)) or '-'}.",
        "Real-vs-real floor (N real training loops against the held-out reference): "
        + "; ".join(f"at N = {n}: {floors_at(res, n)}" for n in ns) + ".",
        f"Each cell: mean ± half-width of the {LEVEL * 100:g} % Student-t interval over the seeds' final values (the "
        f"last snapshot of each seed). Verdicts: Welch's t-test (alpha {ALPHA}) over the same final values, "
        "against the baseline of the same setting at the same N (column 'vs'); density is compared as |density - 1|. "
        f"Reaches: per seed, the {res.time_key.replace('_', '-')} at which the row first matched its baseline's "
        "mean best value over seeds ('-': not within its budget).",
        *res.notes,
    ]
    return " ".join(parts)


def _columns(res: Results) -> list[tuple[str, str]]:
    present = {k for ln in res.lines for k, v in ln.items() if (v or "").strip()}
    return [(k, s) for k, s in TABLE_METRICS if k in present or k == HEADLINE]


def _title(key: str, ns: list[int]) -> str:
    if not key.startswith("FAD"):
        return key
    return f"{key} (N = {ns[0]})" if len(ns) == 1 else f"{key} (at the line's N)"


def _vs(res: Results, row: str, n: int) -> str:
    base = baseline_of(row)
    if base == row:
        return "(baseline)"
    if base is None or not res.seeds(base, n):
        return "no baseline run"
    return base


def make_table(res: Results) -> str:
    """One line per (row, n): every metric as mean ± interval over seeds, a verdict per key metric against the
    baseline of the row's setting, and Reaches per seed."""
    if not res.runs:
        return "No evaluated snapshots yet.\n"
    ns = sorted({n for _, _, n in res.runs})
    cols = _columns(res)
    steps = any(distinct(snaps, "budget_steps") for snaps in res.runs.values())
    head = ["row", "N", "seeds", *(["budget steps"] if steps else []), *(_title(k, ns) for k, _ in cols), "vs",
            *(f"{label} verdict" for _, _, label in VERDICTS), *(f"reaches {label}" for _, _, label in VERDICTS)]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for row, n in res.table_keys():
        vs = _vs(res, row, n)
        cells = [row, str(n), str(len(res.seeds(row, n)))]
        if steps:
            cells.append(", ".join(distinct([res.runs[(row, s, n)][-1] for s in res.seeds(row, n)], "budget_steps"))
                         or "-")
        cells += [fmt_interval(res.finals(row, n, k), spec) for k, spec in cols] + [vs]
        tested = vs not in ("(baseline)", "no baseline run")
        cells += [verdict(res.finals(row, n, k), res.finals(vs, n, k), d) if tested else "-" for k, d, _ in VERDICTS]
        cells += [reaches(res, row, n, k, d) if vs != "no baseline run" else "-" for k, d, _ in VERDICTS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def conditional_table(res: Results) -> str:
    """Genre-conditional keys, one line per seed: genre accuracy and the worst genre's, each with its Wilson
    interval over the N generated loops (the CSV's _lo, _hi), and the judge's accuracy on real loops. '' when
    no line has cond_acc."""
    keys = [k for k, snaps in res.runs.items() if not math.isnan(value(snaps[-1], "cond_acc"))]
    if not keys:
        return ""
    head = ["row", "seed", "N", *(f"{label} [95 % Wilson]" for _, label in CONDITIONAL), "judge on real loops"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for row, seed, n in keys:
        last = res.runs[(row, seed, n)][-1]
        cells = [row, str(seed), str(n)]
        for k, _ in CONDITIONAL:
            lo, hi = value(last, f"{k}_lo"), value(last, f"{k}_hi")
            interval = "" if math.isnan(lo) or math.isnan(hi) else f" [{lo:.2f}, {hi:.2f}]"
            cells.append(fmt(value(last, k), ".2f") + interval)
        cells.append(fmt(value(last, "judge_acc"), ".2f"))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def markdown(res: Results) -> str:
    """The whole markdown: header, the table, and (for conditional rows) the per-seed genre table."""
    parts = [header(res), make_table(res)]
    cond = conditional_table(res)
    if cond:
        parts += ["Genre-conditional rows, per seed (final snapshot):", cond]
    return "\n\n".join(p.rstrip("\n") for p in parts) + "\n"


GLANCE = [("KAD_musicnn_mel", "lower", "KAD (musicnn, mels)"), ("coverage", "higher", "coverage"),
          ("density", "one", "density")]   # the README's few columns; the full table lives in docs/results.md


def glance(res: Results) -> str:
    """A short version for the README: one line per row (every N), KAD, coverage and density as mean ± interval
    over seeds, each with its verdict against the row's baseline in brackets, under a one-sentence header that
    comes from the CSV like `header`'s."""
    if not res.runs:
        return "No evaluated snapshots yet.\n"
    runs = [ln for snaps in res.runs.values() for ln in snaps]
    seeds = sorted({s for _, s, _ in res.runs})
    ns = sorted({n for _, _, n in res.runs})
    floor = "; ".join(fmt_interval([value(f, HEADLINE) for f in res.floors
                                    if value(f, "n") == n and not math.isnan(value(f, HEADLINE))]) for n in ns)
    head = (f"{said(runs + res.floors, 'date', '').strip()}, {', '.join(distinct(runs, 'machine')) or '-'}; "
            f"{said(finals_of(res), 'budget_minutes', '').strip()} {res.time_key.replace('_', '-')} per run; seeds "
            f"{', '.join(map(str, seeds))}; N = {', '.join(map(str, ns))} generated against "
            f"{', '.join(distinct(runs, 'n_real')) or '?'} held-out real loops (real vs real: KAD {floor}). "
            "Mean ± 95 % interval over seeds; (Welch's verdict against the baseline).")
    lines = ["| row | seeds | " + " | ".join(label for _, _, label in GLANCE) + " |", "|" + " --- |" * (2 + len(GLANCE))]
    for row, n in res.table_keys():
        vs = _vs(res, row, n)
        tested = vs not in ("(baseline)", "no baseline run")
        cells = [row + ("" if len(ns) == 1 else f" (N {n})"), str(len(res.seeds(row, n)))]
        for key, direction, _ in GLANCE:
            cell = fmt_interval(res.finals(row, n, key))
            if tested:
                cell += f" ({verdict(res.finals(row, n, key), res.finals(vs, n, key), direction)})"
            elif vs == "(baseline)":
                cell += " (baseline)"
            cells.append(cell)
        lines.append("| " + " | ".join(cells) + " |")
    return head + "\n\n" + "\n".join(lines) + "\n"


def report(lines: list[dict]) -> str:
    """results.csv lines -> the markdown (`read_results`, then `markdown`)."""
    return markdown(read_results(lines))


# ---------------------------------------------------------------------------------------------------------------
# Docs pages: a generated block between markers
# ---------------------------------------------------------------------------------------------------------------
def _markers(name: str) -> re.Pattern:
    """<!-- generated: NAME (command) --> ... <!-- end generated: NAME -->, the command optional."""
    n = re.escape(name)
    return re.compile(rf"<!-- generated: {n}(?: \([^\n]*?\))? -->.*?<!-- end generated: {n} -->", re.S)


def write_generated(path: str | Path, name: str, markdown: str, command: str = "") -> None:
    """Replace the text between NAME's markers in the docs page `path` with `markdown` (append the block when the
    page has none), atomically. Text outside the markers is left as it was, the opening marker's command too (the
    page names the full command that made the data; a report-only rewrite must not replace it); a new block, or
    a marker without one, gets `command`."""
    path = Path(path)
    if not path.is_file():
        raise ReportError(f"{path}: no such docs page; give an existing file (e.g. docs/results.md)")
    text = path.read_text()
    found = _markers(name).search(text)
    if found is None and re.search(rf"<!-- generated: {re.escape(name)}( \(| -->)", text):
        raise ReportError(f"{path}: the block '{name}' has no '<!-- end generated: {name} -->' marker; add it "
                          "where the block ends")
    old = found and re.match(r"<!-- generated: .*? \((.*)\) -->", found.group(0).split("\n", 1)[0])
    command = old.group(1) if old else command
    begin = f"<!-- generated: {name} ({command}) -->" if command else f"<!-- generated: {name} -->"
    block = f"{begin}\n{markdown.strip()}\n<!-- end generated: {name} -->"
    new = text[:found.start()] + block + text[found.end():] if found else text.rstrip("\n") + "\n\n" + block + "\n"
    if new != text:
        atomic_write(path, lambda tmp: Path(tmp).write_text(new))
