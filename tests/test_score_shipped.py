"""experiments/score_shipped.py as a spec: a shipped folder is scored through its own vocoder against the demo
set of its kind with the real floor beside it; the table comes from the CSV (a column per model, its last line),
shows KAD, FAD and the genre accuracies, intervals where there are, and says that they are over loops, not seeds."""
from pathlib import Path

import numpy as np
import pytest

from experiments import score_shipped as S
from plumbing.checkpoint import save_checkpoint
from plumbing.files import read_csv


def line(model, kad, **extra):
    base = dict(model=model, step="6000", n_fake="300", n_real="300", date="2026-12-07", machine="test CPU",
                threads="1", KAD_musicnn=kad, KAD_musicnn_lo=kad - 1, KAD_musicnn_hi=kad + 1,
                floor_KAD_musicnn=0.04, KAD_musicnn_mel=2.0, density=0.8, coverage=0.6, copies=0.01,
                cond_acc=0.62, cond_acc_lo=0.56, cond_acc_hi=0.67, cond_acc_min=0.3, judge_acc=0.9, chance=0.1)
    base.update(extra)
    return {k: str(v) for k, v in base.items()}


def cells(text: str, label: str, nth: int = 0) -> list[str]:
    """The cells after the label of the nth table line labelled `label`."""
    found = [r for r in text.splitlines() if r.startswith(f"| {label} |")][nth]
    return [c.strip() for c in found.strip("|").split("|")][1:]


def test_the_table_is_a_column_per_model_from_its_last_line_with_intervals_over_loops():
    text = S.table([line("pretrained/drum", 9.0), line("pretrained/drum", 4.2), line("pretrained/synth", 6.0)])
    assert cells(text, "metric") == ["pretrained/drum", "pretrained/synth"]
    assert cells(text, "steps trained") == ["6000", "6000"]
    assert cells(text, "KAD (musicnn, audio)") == ["4.2 [3.2, 5.2]", "6 [5, 7]"]          # the last drum line
    assert cells(text, "real floor") == ["0.04", "0.04"]                                   # beside its KAD
    assert cells(text, "FAD (musicnn, audio)") == ["-", "-"]                               # not in these lines
    assert cells(text, "genre accuracy") == ["0.62 [0.56, 0.67]"] * 2
    assert cells(text, "worst genre") == ["0.30"] * 2                                      # no interval
    assert "N = 300 generated" in text and "not over training seeds" in text and "test CPU" in text
    assert S.table([]) == "No shipped model scored yet.\n"


def test_a_folder_is_scored_through_its_own_vocoder_against_the_demo_set_of_its_kind(tmp_path, monkeypatch):
    folder = tmp_path / "synth"
    save_checkpoint({k: 0 for k in S.sample.CKPT_KEYS} | {"loops": "synth"}, folder / "latest.pt")
    (folder / "vocoder.pt").write_bytes(b"x")
    calls = {}
    monkeypatch.setattr(S, "ensure_demo_set", lambda loops: calls.setdefault("set", f"demo_{loops}"))
    monkeypatch.setattr(S.evaluate, "prepare_real", lambda data, n, seed, device, verbose: ("real", data, n))
    monkeypatch.setattr(S.melgan, "load_vocoder", lambda path, loops, device: calls.setdefault("voc", path))
    monkeypatch.setattr(S.evaluate, "evaluate_checkpoint",
                        lambda f, real, n, seed, device, vocoder, verbose: {"real": real, "vocoder": vocoder})
    monkeypatch.setattr(S.evaluate, "real_floor", lambda real, seed, verbose: {k: 0.1 for k in S.FLOOR_KEYS})
    monkeypatch.setattr(S, "clamped_share", lambda folder, n, seed: {"clamped": 0.25})
    row = S.score(folder, 12, "cpu")
    assert calls == {"set": "demo_synth", "voc": folder / "vocoder.pt"}
    assert row["real"] == ("real", "demo_synth", 12) and row["vocoder"] == folder / "vocoder.pt"
    assert row["floor_KAD_musicnn"] == row["floor_FAD_musicnn_mel"] == 0.1 and row["model"] == str(folder) and row["n"] == 12


def test_a_folder_without_a_model_is_one_line_and_the_csv_untouched(tmp_path, capsys):
    csv = tmp_path / "shipped.csv"
    assert S.main([str(tmp_path / "nothing"), "--csv", str(csv)]) == 2
    err = capsys.readouterr().err.strip()
    assert "not a shipped model" in err and "pretrain.py" in err and len(err.splitlines()) == 1
    assert not csv.exists()


def test_the_report_goes_between_the_pages_markers_from_the_csv(tmp_path):
    csv, page = tmp_path / "shipped.csv", tmp_path / "pretrained.md"
    S.append_csv(csv, line("pretrained/drum", 4.2))
    page.write_text("# Shipped models\n")
    S.main(["pretrained/drum", "--csv", str(csv), "--report-only", "--docs", str(page)])
    text = page.read_text()
    assert "<!-- generated: shipped-models (python -m experiments.score_shipped pretrained/drum" in text
    assert cells(text, "KAD (musicnn, audio)") == ["4.2 [3.2, 5.2]"] and len(read_csv(csv)) == 1
    with pytest.raises(SystemExit):
        S.main(["pretrained/drum", "--csv", str(csv), "--report-only", "--docs", str(tmp_path / "none.md")])


def test_a_loop_is_clamped_when_a_mel_value_is_above_what_any_signal_can_have(monkeypatch):
    mels = np.full((4, 64, 200), -2.0)
    mels[1, 3, 5] = S.MEL_CEILING + 0.01                  # one loop with a single value above the ceiling
    mels[2, 0, 0] = S.MEL_CEILING                         # at the ceiling: a loud sound, left as it is
    monkeypatch.setattr(S.sample, "load_generator", lambda folder: (None, {}))
    monkeypatch.setattr(S.evaluate, "generate_set", lambda G, ck, voc, n, seed: (None, mels[:n]))
    got = S.clamped_share(Path("x"), 4)
    assert got["clamped"] == 0.25 and 0 < got["clamped_lo"] < 0.25 < got["clamped_hi"] < 1
