"""The user's whole path through the command-line tools, in miniature:

    demo/loops.py -> train.py (two runs, the second resumed) -> sample.py -> evaluate.py

Each step is the real command in a subprocess, as a user types it; only the sizes are tiny."""
import csv
from pathlib import Path

import pytest
import soundfile as sf

from stubs import run_cli

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_render_train_resume_sample_evaluate(tmp_path):
    data, run_dir = tmp_path / "data", tmp_path / "run"
    # 40 loops, 40 source files: 32 train G, 8 are held out for evaluate.py's reference (-n 8 below)
    run_cli("-m", "demo.loops", "--loops", "drum", "-n", "40", "--out", data, "--quiet", cwd=tmp_path)
    tiny = ["--loops", "drum", "--features", "aisfx", "--data", data, "--out", run_dir, "--batch", "4",
            "--g-channels", "16", "--d-channels", "16", "--ckpt-every", "1", "--sample-every", "1"]
    out = run_cli(REPO / "train.py", *tiny, "--steps", "2", "--samples", "0", cwd=tmp_path)
    assert "CPU preset" in out and (run_dir / "latest.pt").exists() and (run_dir / "grid_0000002.png").exists()
    out = run_cli(REPO / "train.py", *tiny, "--steps", "3", "--resume", "--samples", "2", "--vocoder",
                  "griffin-lim", cwd=tmp_path)
    assert "resumed" in out and (run_dir / "grid_0000003.png").exists()
    # The run ends with sound: its loops and real loops of the set, through the same vocoder, on one page.
    heard = sorted(p.name for p in (run_dir / "samples").glob("loop_*.wav"))
    assert heard[:4] == ["loop_0000.wav", "loop_0000_x4.wav", "loop_0001.wav", "loop_0001_x4.wav"]
    assert any(n.startswith("loop_real_") for n in heard) and (run_dir / "samples" / "index.html").exists()

    run_cli(REPO / "sample.py", run_dir, "-n", "2", "--out", tmp_path / "samples", cwd=tmp_path)
    wav, sr = sf.read(tmp_path / "samples" / "loop_0001.wav")
    assert (sr, len(wav)) == (16000, 32000)

    out = run_cli(REPO / "evaluate.py", run_dir / "latest.pt", "--data", data, "-n", "8", "--csv", tmp_path / "r.csv",
              "--vgg16-fc", "256", cwd=tmp_path)
    rows = list(csv.DictReader(open(tmp_path / "r.csv")))
    assert len(rows) == 1 and "FAD_aisfx" in out
