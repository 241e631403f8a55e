"""evaluation/report.py as a spec, on synthetic results.csv lines: runs are keyed by (row, seed, n) and end at their
last snapshot; a table cell is the mean ± the 95 % Student-t half-width over seeds; each row is judged (Welch's t)
against the baseline of its own setting; density is judged by |density - 1|; the header says only what the CSV
says; a docs page changes only between its markers."""
import math
import re

import pytest

from evaluation import metrics, report
from evaluation.report import ReportError
from plumbing.files import read_csv

T_975_DF2 = 4.302652729911275      # Student t, 97.5 % quantile, 2 degrees of freedom (any t table)


def snap(row, seed, step, n=300, **metrics):
    """One results.csv line as plumbing.files.read_csv gives it: every value a string, missing columns empty."""
    line = dict(row=row, label=row, seed=str(seed), n=str(n), n_real="250", ckpt=f"ckpt_{step:06d}.pt",
                step=str(step), train_minutes=str(step / 100), idle_minutes=str(step / 10), budget_minutes="15",
                budget_steps="150", threads="1", clock="idle", machine="test CPU x2", date="2026-12-06",
                KAD_musicnn_mel="", FAD_musicnn_mel="", density="", coverage="")
    line.update({k: str(v) for k, v in metrics.items()})
    return line


def runs(row, finals, key="KAD_musicnn_mel", n=300, **fixed):
    """One run per seed of `row`: an early snapshot at 1.0 and the final one at `finals[seed]`."""
    return [s for seed, v in enumerate(finals)
            for s in (snap(row, seed, 50, n, **{key: 1.0}, **fixed), snap(row, seed, 150, n, **{key: v}, **fixed))]


def table_line(markdown: str, row: str, n: int | None = None) -> dict:
    """The table line of `row` (at N = n) as {column header: cell}."""
    lines = [ln for ln in markdown.splitlines() if ln.startswith("| ")]
    split = lambda ln: [c.strip().replace(r"\|", "|") for c in re.split(r"(?<!\\)\|", ln)[1:-1]]   # noqa: E731
    head = split(lines[0])
    for ln in lines[2:]:
        cells = dict(zip(head, split(ln)))
        if cells["row"] == row and (n is None or cells["N"] == str(n)):
            return cells
    raise AssertionError(f"no table line for {row} (N = {n})")


def test_a_cell_is_the_mean_and_the_half_width_of_the_95_percent_t_interval_over_seeds():
    values = [1.0, 2.0, 4.0]
    mean = 7 / 3
    sd = math.sqrt(((1 - mean) ** 2 + (2 - mean) ** 2 + (4 - mean) ** 2) / 2)
    half = T_975_DF2 * sd / math.sqrt(3)                                            # 3.79...
    m, lo, hi = metrics.mean_interval(values, level=0.95)
    assert m == pytest.approx(mean) and lo == pytest.approx(mean - half) and hi == pytest.approx(mean + half)
    res = report.read_results(runs("loop", values))
    line = table_line(report.make_table(res), "loop")
    assert line["KAD_musicnn_mel"] == "2.3 ± 3.8" and line["seeds"] == "3"


def test_the_final_value_is_the_last_snapshot_not_the_best():
    lines = [snap("loop", 0, 150, KAD_musicnn_mel=0.9), snap("loop", 0, 50, KAD_musicnn_mel=0.1)]   # CSV order
    res = report.read_results(lines)
    assert res.finals("loop", 300, "KAD_musicnn_mel") == [0.9]


def test_each_setting_is_judged_against_its_own_baseline():
    lines = (runs("stylegan2", [0.10, 0.11, 0.12]) + runs("stylegan2_cond", [0.50, 0.52, 0.51])
             + runs("loop_cond", [0.30, 0.31, 0.29]) + runs("general_loop_cond", [0.70, 0.72, 0.71])
             + runs("loop", [0.11, 0.10, 0.12]) + runs("general_shiftcutout", [0.2, 0.21, 0.22]))
    table = report.make_table(report.read_results(lines))
    # loop_cond is far behind stylegan2 but ahead of stylegan2_cond, the baseline of its setting
    assert table_line(table, "loop_cond")["vs"] == "stylegan2_cond"
    assert table_line(table, "loop_cond")["KAD verdict"] == "ahead"
    assert table_line(table, "general_loop_cond")["vs"] == "stylegan2_cond"
    assert table_line(table, "general_loop_cond")["KAD verdict"] == "behind"
    assert table_line(table, "loop")["vs"] == "stylegan2"
    assert table_line(table, "loop")["KAD verdict"] == "not distinguishable"
    assert table_line(table, "general_shiftcutout")["vs"] == "no baseline run"
    assert table_line(table, "stylegan2")["vs"] == "(baseline)"


def test_the_baseline_of_a_row_is_stylegan2_with_the_rows_setting():
    assert report.baseline_of("general") == "stylegan2"
    assert report.baseline_of("general_loop_cond") == "stylegan2_cond"            # the longest Table-1 name
    assert report.baseline_of("general_mtat_shiftcutout") == "stylegan2_shiftcutout"
    assert report.baseline_of("stylegan2_cond") == "stylegan2_cond"
    assert report.baseline_of("something_else") is None


def test_density_is_judged_by_its_distance_from_one():
    """density 1.0 beats a baseline at 1.6 although 1.6 is the larger number; 0.4 is as far from 1 as 1.6."""
    base = runs("stylegan2", [1.60, 1.62, 1.58], key="density")
    table = report.make_table(report.read_results(base + runs("loop", [1.0, 1.01, 0.99], key="density")
                                                  + runs("general", [0.40, 0.41, 0.39], key="density")))
    assert table_line(table, "loop")["|D-1| verdict"] == "ahead"
    assert table_line(table, "general")["|D-1| verdict"] == "not distinguishable"
    assert table_line(table, "loop")["density"] == "1.000 ± 0.025"                 # shown as it is


def test_one_seed_is_not_tested():
    table = report.make_table(report.read_results(runs("stylegan2", [0.1]) + runs("loop", [0.5])))
    assert table_line(table, "loop")["KAD verdict"] == "untested (1 seed)"
    assert table_line(table, "loop")["KAD_musicnn_mel"] == "0.5"


def test_reaches_lists_per_seed_when_the_row_first_matched_the_baselines_mean_best():
    base = [snap("stylegan2", s, step, KAD_musicnn_mel=v) for s, (a, b) in enumerate([(0.4, 0.2), (0.3, 0.4)])
            for step, v in ((50, a), (150, b))]                                  # bests 0.2 and 0.3: target 0.25
    row = [snap("loop", 0, 50, KAD_musicnn_mel=0.24), snap("loop", 0, 150, KAD_musicnn_mel=0.1),
           snap("loop", 1, 50, KAD_musicnn_mel=0.5), snap("loop", 1, 150, KAD_musicnn_mel=0.25),
           snap("loop", 2, 50, KAD_musicnn_mel=0.5), snap("loop", 2, 150, KAD_musicnn_mel=0.26)]
    table = report.make_table(report.read_results(base + row))
    assert table_line(table, "loop")["reaches KAD"] == "5.0, 15.0, -"              # idle minutes = step / 10


def test_an_old_csv_without_seed_reads_as_seed_0_with_n_from_n_fake():
    old = [{k: v for k, v in snap("loop", 0, step, KAD_musicnn_mel=v).items() if k not in ("seed", "n", "idle_minutes")}
           | {"n_fake": "300"} for step, v in ((50, 0.5), (150, 0.2))]
    res = report.read_results(old)
    assert list(res.runs) == [("loop", 0, 300)]
    text = report.report(old)
    assert "read as seed 0 with N from its n_fake column" in text and "train_minutes" in text
    assert table_line(text, "loop")["KAD_musicnn_mel"] == "0.2"


def test_a_csv_with_neither_seed_nor_n_fake_is_refused_in_one_line_that_says_how_to_rerun():
    old = [{k: v for k, v in snap("loop", 0, 50, KAD_musicnn_mel=0.5).items() if k not in ("seed", "n")}]
    with pytest.raises(ReportError, match="run reproduce.py again") as e:
        report.read_results(old)
    assert "\n" not in str(e.value)


def test_a_csv_of_another_schema_is_refused_in_one_line():
    with pytest.raises(ReportError, match="unknown schema") as e:
        report.read_results([{"model": "x", "FAD": "1"}])
    assert "\n" not in str(e.value)


def test_another_n_is_another_key_never_averaged_with_the_first():
    lines = runs("loop", [0.5], n=300, FAD_musicnn_mel=20) + runs("loop", [0.1], n=1000, FAD_musicnn_mel=5)
    res = report.read_results(lines)
    assert sorted(res.runs) == [("loop", 0, 300), ("loop", 0, 1000)]
    table = report.make_table(res)
    assert table_line(table, "loop", 300)["KAD_musicnn_mel"] == "0.5"
    assert table_line(table, "loop", 1000)["KAD_musicnn_mel"] == "0.1"
    assert "FAD_musicnn_mel (at the line's N)" in table


def test_fad_columns_carry_n_in_their_header():
    table = report.make_table(report.read_results(runs("loop", [0.5], FAD_musicnn_mel=20)))
    assert "| FAD_musicnn_mel (N = 300) |" in table


def test_the_header_says_what_the_csv_says_and_the_floor_at_that_n():
    floor = dict(row="real_floor", seed="0", n="300", n_real="250", ckpt="", step="", KAD_musicnn_mel="0.001",
                 FAD_musicnn_mel="1.25", date="2026-12-05")
    text = report.report(runs("stylegan2", [0.2, 0.3]) + [floor])
    for said in ("2026-12-05", "2026-12-06", "test CPU x2", "threads 1", "clock idle", "Budget per row: 15 minutes",
                 "N generated: 300", "N real (held-out reference): 250", "Seeds: 0, 1",
                 "at N = 300: KAD_musicnn_mel 0.001, FAD_musicnn_mel 1.25", "Welch's t-test"):
        assert said in text, said
    assert "not measured" in report.report(runs("stylegan2", [0.2, 0.3]))


def test_a_run_resumed_to_a_larger_budget_is_reported_at_its_last_budget():
    early = [dict(ln, budget_minutes="10", budget_steps="100") for ln in runs("stylegan2", [0.2, 0.3])]
    late = [snap("stylegan2", seed, 225, KAD_musicnn_mel=v, budget_minutes="15", budget_steps="225")
            for seed, v in enumerate([0.1, 0.2])]
    text = report.report(early + late)
    assert "Budget per row: 15 minutes" in text and "10 minutes" not in text
    assert table_line(text, "stylegan2")["budget steps"] == "225"
    assert table_line(text, "stylegan2")["KAD_musicnn_mel"].startswith("0.15")     # the 15-minute finals


def test_conditional_rows_get_a_per_seed_table_with_wilson_intervals():
    cond = dict(cond_acc=0.8, cond_acc_lo=0.75, cond_acc_hi=0.84, cond_acc_min=0.5, cond_acc_min_lo=0.4,
                cond_acc_min_hi=0.6, judge_acc=0.95)
    text = report.report(runs("loop_cond", [0.3, 0.4], **cond))
    assert "| loop_cond | 1 | 300 | 0.80 [0.75, 0.84] | 0.50 [0.40, 0.60] | 0.95 |" in text
    assert "cond_acc_min" in text.splitlines()[2]                                  # the main table's column too
    assert report.conditional_table(report.read_results(runs("loop", [0.3]))) == ""


def test_write_generated_replaces_only_between_its_markers_and_is_idempotent(tmp_path):
    page = tmp_path / "results.md"
    page.write_text("# Results\n\nintro\n\n<!-- generated: other -->\nkeep me\n<!-- end generated: other -->\n\n"
                    "<!-- generated: table (python old.py) -->\nold table\n<!-- end generated: table -->\n\nafter\n")
    report.write_generated(page, "table", "| new |\n", command="python reproduce.py --report-only")
    once = page.read_text()
    assert "old table" not in once and "| new |" in once and "keep me" in once and once.endswith("\n\nafter\n")
    assert "<!-- generated: table (python old.py) -->\n| new |\n" in once      # the page's command stays
    report.write_generated(page, "table", "| new |\n", command="python reproduce.py --report-only")
    assert page.read_text() == once


def test_write_generated_appends_a_missing_block_and_refuses_a_missing_page(tmp_path):
    page = tmp_path / "vocoder.md"
    page.write_text("# Vocoder\n")
    report.write_generated(page, "bench", "x", command="python bench.py")
    assert page.read_text() == "# Vocoder\n\n<!-- generated: bench (python bench.py) -->\nx\n" \
                               "<!-- end generated: bench -->\n"
    with pytest.raises(ReportError, match="no such docs page"):
        report.write_generated(tmp_path / "missing.md", "bench", "x")


# ---------------------------------------------------------------------------------------------------------------
# The vocoder benchmark's table: its own CSV, the last run, KAD with its interval, the floor first
# ---------------------------------------------------------------------------------------------------------------
def vocoder_line(run, name, kad, **extra):
    return dict(run=run, date=run[:10], machine="test CPU", threads="1", loops="drum", data="data/demo_drum",
                n="128", n_ref="128", vocoder=name, mel_l1="0.1", stft_mag="1", sc="0.2", kad_musicnn=str(kad),
                kad_musicnn_lo=str(kad - 0.01), kad_musicnn_hi=str(kad + 0.02), fad_musicnn="3", loopability="1",
                s_per_loop="", loops_per_s="", **extra)


def test_the_vocoder_table_is_the_last_run_of_its_csv_with_kad_intervals_and_the_real_floor(tmp_path):
    from experiments import bench_vocoder as BV
    path = tmp_path / "vocoder_drum.csv"
    BV.append_lines(path, [vocoder_line("2026-12-01T10:00:00", "real (floor)", 0.5),
                           vocoder_line("2026-12-01T10:00:00", "old vocoder", 9.0)])
    BV.append_lines(path, [vocoder_line("2026-12-06T10:00:00", "the real audio itself (floor)", 0.05),
                           vocoder_line("2026-12-06T10:00:00", "fast", 1.25, note="a new column")])
    lines = read_csv(path)
    assert len(lines) == 4 and lines[0]["note"] == ""                                 # earlier runs kept
    table = BV.format_table(lines)
    assert "old vocoder" not in table and "Measured 2026-12-06 on test CPU, 1 torch threads" in table
    body = [ln for ln in table.splitlines() if ln.startswith("| ")]
    assert body[1].startswith("| the real audio itself (floor) |") and "| 0.050 [0.040, 0.070] |" in body[1]
    assert "| 1.250 [1.240, 1.270] |" in body[2] and "FAD_musicnn (N = 128)" in body[0]


def test_the_vocoder_glance_is_the_last_run_kad_with_its_interval_and_speed(tmp_path):
    from experiments import bench_vocoder as BV
    path = tmp_path / "vocoder_drum.csv"
    BV.append_lines(path, [vocoder_line("2026-12-01T10:00:00", "old vocoder", 9.0)])
    BV.append_lines(path, [vocoder_line("2026-12-06T10:00:00", "the real audio itself (floor)", 0.05),
                           vocoder_line("2026-12-06T10:00:00", "fast:checkpoints/v.pt", 1.25)])
    text = BV.glance_table(read_csv(path))
    assert "old vocoder" not in text and text.startswith("2026-12-06, test CPU, 1 thread(s): 128 held-out")
    assert "| fast | 1.25 [1.24, 1.27] | - |" in text and "| the real audio itself (floor) | 0.05 [0.04, 0.07]" in text


def test_bench_vocoder_writes_its_table_into_the_docs_page_and_refuses_a_missing_one(tmp_path, monkeypatch):
    from experiments import bench_vocoder as BV
    monkeypatch.setattr(BV, "bench_set", lambda loops, *a, **k: f"table of {loops}")
    page = tmp_path / "vocoder.md"
    page.write_text("# Vocoders\n")
    BV.main(["--loops", "drum", "--data", str(tmp_path), "--griffin-lim", "no", "--docs", str(page)])
    assert "<!-- generated: vocoder-drum (python -m experiments.bench_vocoder --loops drum -n 128 --docs " \
        in page.read_text() and "\ntable of drum\n<!-- end generated: vocoder-drum -->" in page.read_text()
    with pytest.raises(SystemExit, match="no such file") as e:
        BV.main(["--loops", "drum", "--data", str(tmp_path), "--docs", str(tmp_path / "missing.md")])
    assert "\n" not in str(e.value)


def test_write_generated_refuses_a_block_without_its_end_marker_but_not_a_longer_name(tmp_path):
    page = tmp_path / "results.md"
    page.write_text("<!-- generated: table1-drum -->\nx\n<!-- end generated: table1-drum -->\n")
    report.write_generated(page, "table1", "y")                                   # another block: appended
    assert page.read_text().endswith("<!-- generated: table1 -->\ny\n<!-- end generated: table1 -->\n")
    page.write_text("<!-- generated: table1 (cmd) -->\nx\n")
    with pytest.raises(ReportError, match="no '<!-- end generated: table1 -->' marker"):
        report.write_generated(page, "table1", "y")


def test_the_readme_glance_gives_each_rows_mean_interval_and_verdict_against_its_baseline():
    lines = runs("stylegan2", [1.0, 1.1, 0.9]) + runs("loop", [0.30, 0.32, 0.28]) + \
        [dict(row="real_floor", seed="0", n="300", ckpt="", KAD_musicnn_mel="0.05")]
    text = report.glance(report.read_results(lines))
    assert "seeds 0, 1, 2" in text and "N = 300 generated against 250 held-out" in text and "KAD 0.05" in text
    loop = next(ln for ln in text.splitlines() if ln.startswith("| loop |"))
    mean, lo, hi = metrics.mean_interval([0.30, 0.32, 0.28])
    assert f"| {mean:.3f} ± {(hi - lo) / 2:.3f} (ahead) |" in loop     # KAD: lower than the baseline's, by Welch
    assert "(baseline)" in next(ln for ln in text.splitlines() if ln.startswith("| stylegan2 |"))


def test_figure4_draws_per_snapshot_the_mean_and_interval_over_seeds_and_writes_a_png(tmp_path):
    from evaluation import figure4
    res = report.read_results(runs("loop", [1.0, 2.0, 4.0]))        # each seed: 1.0 at step 50, then its final
    (t0, m0, lo0, hi0), (t1, m1, lo1, hi1) = figure4.curve(res, "loop", 300, "KAD_musicnn_mel")
    assert (t0, m0, lo0, hi0) == (5.0, 1.0, 1.0, 1.0)               # idle minutes = step / 10; equal values
    half = T_975_DF2 * math.sqrt(((1 - 7 / 3) ** 2 + (2 - 7 / 3) ** 2 + (4 - 7 / 3) ** 2) / 2) / math.sqrt(3)
    assert t1 == 15.0 and m1 == pytest.approx(7 / 3) and (lo1, hi1) == pytest.approx((7 / 3 - half, 7 / 3 + half))
    one = figure4.curve(report.read_results(runs("loop", [2.0])), "loop", 300, "KAD_musicnn_mel")
    assert math.isnan(one[-1][2]) and math.isnan(one[-1][3])         # one seed: no band
    figure4.plot(res, tmp_path / "fig.png")
    assert (tmp_path / "fig.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
