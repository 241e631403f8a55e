"""Regenerate tests/musicnn_reference.json: musicnn's own TensorFlow graph on a few demo loops, the
reference that proves the PyTorch port (standins/musicnn_port.py) right (tests/test_musicnn.py, to 1e-4).

Needs a throwaway TensorFlow environment outside the repo (pjloop itself never needs TensorFlow):

    python -m venv /tmp/tfenv
    /tmp/tfenv/bin/pip install tensorflow-cpu==2.21.0 tf-keras==2.21.0 librosa==0.11.0 soundfile
    /tmp/tfenv/bin/pip install --no-deps musicnn==0.1.0
    python -m standins.make_musicnn_fixture --tf-python /tmp/tfenv/bin/python

How the clips are made and run (and the one float32 difference): docs/modules.md,
"standins/make_musicnn_fixture.py".
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

import demo.loops
from standins.musicnn_port import MODELS, MUSICNN_SR, PATCH_FRAMES, repeat_to_patch

FIXTURE = Path(__file__).resolve().parent / "tests" / "musicnn_reference.json"
# (loops, genre, seed): the first three loops of the demo drum set (demo.loops.loop_seed(0, i)) and two
# synth loops, so that the fixture covers tags of both kinds.
CLIPS = (("drum", "house", 2968811710), ("drum", "techno", 3964924996), ("drum", "hiphop", 3141116543),
         ("synth", "pad_chords", 1), ("synth", "arpeggio", 2))
DIGITS = 6                           # significant digits kept: rounding error 5e-7, far below the 1e-4 test

# Runs under the TF interpreter: argv = [folder with clip_<i>.wav, n_clips, n_frames, models...].
TF_SIDE = r"""
import json, os, sys
import librosa
import numpy as np
import tensorflow as tf
from musicnn import configuration, models
tf.compat.v1.disable_eager_execution()             # TF-1 graph mode, as musicnn's extractor sets it
folder, n_clips, n_frames, names = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:]
out = {"versions": {"tensorflow": tf.__version__, "librosa": librosa.__version__}}

def patch(path):
    # extractor.batch_data's lines, its first patch; the log in float32 (see the module docstring)
    audio, sr = librosa.load(path, sr=configuration.SR)
    rep = librosa.feature.melspectrogram(y=audio, sr=sr, hop_length=configuration.FFT_HOP,
                                         n_fft=configuration.FFT_SIZE, n_mels=configuration.N_MELS).T
    rep = np.log10(10000 * rep.astype(np.float16).astype(np.float32) + 1)
    return rep[None, :n_frames]

for name in names:
    labels = configuration.MTT_LABELS if "MTT" in name else configuration.MSD_LABELS
    tf.compat.v1.reset_default_graph()
    x = tf.compat.v1.placeholder(tf.float32, [None, n_frames, configuration.N_MELS])
    is_training = tf.compat.v1.placeholder(tf.bool)
    outputs = models.define_model(x, is_training, name, len(labels))
    fetch = [tf.nn.sigmoid(outputs[0])] + ([outputs[-1]] if name == "MSD_musicnn" else [])
    sess = tf.compat.v1.Session()
    tf.compat.v1.train.Saver().restore(sess, os.path.dirname(models.__file__) + "/" + name + "/")
    rows = []
    for i in range(n_clips):
        res = sess.run(fetch, feed_dict={x: patch(f"{folder}/clip_{i}.wav"), is_training: False})
        rows.append({"probs": res[0][0].tolist()} | ({"penultimate": res[1][0].tolist()} if len(res) > 1 else {}))
    sess.close()
    out[name] = rows
print("FIXTURE-JSON " + json.dumps(out))
"""


def render_clips() -> np.ndarray:
    """(len(CLIPS), 48000) float32: each loop repeated to musicnn's 3-s patch."""
    return repeat_to_patch(np.stack([demo.loops.render_loop(*c) for c in CLIPS]))


def rounded(values: list[float]) -> list[float]:
    return [float(f"{v:.{DIGITS}g}") for v in values]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tf-python", required=True, help="python of the throwaway TensorFlow environment")
    ap.add_argument("--out", default=str(FIXTURE), help="JSON file to write (default: the test fixture)")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        for i, clip in enumerate(render_clips()):
            sf.write(f"{tmp}/clip_{i}.wav", clip, MUSICNN_SR, subtype="FLOAT")   # float: no requantisation
        run = subprocess.run([args.tf_python, "-c", TF_SIDE, tmp, str(len(CLIPS)), str(PATCH_FRAMES), *MODELS],
                             capture_output=True, text=True, env=os.environ | {"TF_USE_LEGACY_KERAS": "1"})
    if run.returncode:
        raise SystemExit(f"the TensorFlow side failed:\n{run.stderr[-3000:]}")
    line = next(s for s in run.stdout.splitlines() if s.startswith("FIXTURE-JSON "))
    ref = json.loads(line[len("FIXTURE-JSON "):])
    fixture = {"clips": [list(c) for c in CLIPS], "patch_frames": PATCH_FRAMES, "versions": ref["versions"],
               "models": {m: [{k: rounded(v) for k, v in row.items()} for row in ref[m]] for m in MODELS}}
    Path(args.out).write_text(json.dumps(fixture, indent=None, separators=(",", ":")) + "\n")
    print(f"wrote {args.out}: {len(MODELS)} models x {len(CLIPS)} clips")


if __name__ == "__main__":
    main()
