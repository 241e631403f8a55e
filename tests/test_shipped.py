"""The shipped models (pretrained/<loops>/, made by pretrain.py) as a spec: each loads as it is in git, makes one
loop per genre of its demo set (finite mels of the right shape, the genres it records being those of the set), and
voices one through the vocoder it carries, all under 10 MB a kind. A kind not shipped yet is skipped with the
command that makes it."""
import numpy as np
import pytest
import torch

import melgan
import sample
from demo.loops import GENRES
from mel import LOOP_SAMPLES, N_FRAMES, N_MELS
from plumbing import paths

MAX_MB = 10.0          # a shipped kind of loop in git: generator + vocoder


@pytest.mark.parametrize("loops", sorted(GENRES))
def test_a_shipped_model_makes_one_loop_per_genre_and_voices_it(loops):
    folder = paths.shipped() / loops
    if not (folder / "latest.pt").is_file():
        pytest.skip(f"pretrained/{loops} is not shipped yet: python pretrain.py --loops {loops}")
    size = sum(p.stat().st_size for p in folder.glob("*.pt")) / 2 ** 20
    assert size < MAX_MB, f"pretrained/{loops} holds {size:.1f} MB"
    G, ckpt = sample.load_generator(folder)
    assert ckpt["loops"] == loops and sorted(ckpt["genres"]) == sorted(GENRES[loops])
    k = len(ckpt["genres"])
    mels = sample.generate_mels(G, ckpt, k, seed=0, labels=torch.arange(k))          # one loop per genre
    assert mels.shape == (k, N_MELS, N_FRAMES) and np.isfinite(mels).all()
    assert sample.folder_vocoder(folder) == folder / "vocoder.pt"
    audio = sample.vocode_loops(melgan.load_vocoder(folder / "vocoder.pt", loops=loops), mels[:1])
    assert audio.shape == (1, LOOP_SAMPLES) and np.isfinite(audio).all() and np.abs(audio).max() > 1e-3
