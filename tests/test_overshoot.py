"""experiments/overshoot.py as a spec: a loop is clamped when some log10 mel is above what any signal can have,
a blob when it is BLOB_DECADES further up; the table is one line per row, Table 1's order, mean ± interval over
seeds, and a folder without runs is one line."""
import numpy as np

from experiments import overshoot as O


def test_clamped_and_blob_shares_and_the_loudest_value_by_hand():
    mels = np.full((4, 64, 200), -2.0)
    mels[0, 0, 0] = O.MEL_CEILING                          # at the ceiling: neither
    mels[1, 5, 9] = O.MEL_CEILING + 0.5                    # clamped, not a blob
    mels[2, 63, 199] = O.MEL_CEILING + O.BLOB_DECADES + 1  # a blob (and clamped)
    assert O.overshoot(mels) == {"clamped": 0.5, "blob": 0.25, "loudest": O.MEL_CEILING + O.BLOB_DECADES + 1}


def test_the_table_has_a_line_per_row_in_table_1s_order_with_the_interval_over_seeds():
    lines = [dict(row=row, seed=str(s), step="10", n="300", clamped=str(c), blob="0.0", loudest=str(1 + s))
             for row, cs in (("loop", (0.8, 0.9, 1.0)), ("stylegan2", (0.4, 0.4, 0.4))) for s, c in enumerate(cs)]
    rows = [r for r in O.table(lines).splitlines() if r.startswith("| ") and "---" not in r][1:]
    assert [r.split("|")[1].strip() for r in rows] == ["stylegan2", "loop"]
    assert "| 3 | 0.90 ± 0.25 | 0.00 ± 0 | 2 |" in rows[1]          # t(0.975, 2) x 0.1 / sqrt(3) = 0.248
    assert "N = 300 generated" in O.table(lines)


def test_a_folder_without_runs_is_one_line(tmp_path, capsys):
    assert O.main([str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "no run in" in err and len(err.splitlines()) == 1
