"""Audio front end and loop data sets (paper Section 3 and Section 4 "Pipeline"; design.md §1).

Everything in pjloop sees audio through ONE mel front end, defined here:

    16 kHz mono waveform (N,)  ->  log10 mel magnitude (F=64, T=N/160)

    n_fft = win = 1024, hop 160 (10 ms), Hann, 64 mel bands 0-8 kHz (Slaney scale and area
    normalisation, as librosa's defaults), magnitude (power 1), log10 with a floor of 1e-5.

The paper text says a 512-point window; the authors' code and their MelGAN use 1024, which keeps
the lowest of 64 bands from being empty at 16 kHz (design.md §1). We follow the code.

Frame t covers samples [160 t, 160 t + 160): the signal is reflect-padded by (1024 - 160) / 2 = 432
samples on each side, so a 32 000-sample loop gives exactly 200 frames (the authors crop to 192 and
pad the vocoded audio, which breaks seamless looping; pjloop keeps all 200, design.md §1).

A data set directory (written by `demoloops.py` for the embedded demo loops and by this file's CLI
for real loops) looks the same either way, so everything downstream treats them alike:

    DATA_DIR/
      wav/<id>.wav        one-bar loop, 16 kHz mono float, exactly 32 000 samples
      mel/<id>.npy        (F=64, T=200) float32 log10 mel of that wav
      manifest.csv        id, source, bar, bpm, genre   (one row per kept loop)
      stats.npz           mean (64,), std (64,): per-mel-band statistics over the whole set
      skipped.csv         file, reason                  (input that was not used, and why)

On disk mels are (F, T) like librosa; inside the GAN they are (B, 1, T=200, F=64), time-major like
the authors' code and like VGGish's native (96 frames, 64 bands) patch. `LoopMelDataset` converts.
"""
from __future__ import annotations

import csv
import os
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

# ---------------------------------------------------------------------------------------------
# The numbers of the front end, named once (design.md §1).
# ---------------------------------------------------------------------------------------------
SR = 16_000          # Hz; the paper's (and VGGish's) rate
BPM = 120            # every training loop is one bar of 4/4 at 120 BPM ...
BEATS_PER_BAR = 4
LOOP_SECONDS = BEATS_PER_BAR * 60 / BPM   # ... = 2.000 s
LOOP_SAMPLES = int(SR * LOOP_SECONDS)     # 32 000 samples
N_FFT = 1024         # = window length; the authors' code (the paper text says 512, see docstring)
HOP = 160            # 10 ms at 16 kHz, as VGGish
N_MELS = 64          # as VGGish and the authors
F_MIN, F_MAX = 0.0, 8000.0   # full band up to Nyquist
LOG_FLOOR = 1e-5     # log10(max(mel, 1e-5)): -5 is the value of silence
N_FRAMES = LOOP_SAMPLES // HOP            # 200 frames = exactly 2.000 s
CHUNK_FRAMES = N_FRAMES // 2              # 100 frames = the 1-second chunks the feature networks see
PAD = (N_FFT - HOP) // 2                  # 432: centres frame t on samples [160 t, 160 t + 160)
STD_FLOOR = 1e-3     # a band with (almost) no variance is not blown up by standardisation


# ---------------------------------------------------------------------------------------------
# Mel filterbank (Slaney mel scale, Slaney area normalisation: the same as librosa's defaults).
# Written out so that the front end needs only numpy/torch at run time.
# ---------------------------------------------------------------------------------------------
def hz_to_mel(f: np.ndarray) -> np.ndarray:
    """Slaney's mel scale: linear below 1 kHz (3 mels per 200 Hz), logarithmic above."""
    f = np.asarray(f, dtype=np.float64)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0
    return np.where(f >= min_log_hz, min_log_mel + np.log(np.maximum(f, 1e-10) / min_log_hz) / logstep, f / f_sp)


def mel_to_hz(m: np.ndarray) -> np.ndarray:
    """Inverse of `hz_to_mel`."""
    m = np.asarray(m, dtype=np.float64)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)


def mel_filterbank(sr: int = SR, n_fft: int = N_FFT, n_mels: int = N_MELS,
                   fmin: float = F_MIN, fmax: float = F_MAX) -> np.ndarray:
    """Triangular mel filters, (n_mels, n_fft // 2 + 1), each scaled to unit area (Slaney norm)."""
    fft_hz = np.linspace(0, sr / 2, n_fft // 2 + 1)
    edges_hz = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))   # (n_mels + 2,)
    widths = np.diff(edges_hz)                                                         # (n_mels + 1,)
    ramps = edges_hz[:, None] - fft_hz[None, :]                                        # (n_mels + 2, n_bins)
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0, np.minimum(lower, upper))                                  # (n_mels, n_bins)
    weights *= (2.0 / (edges_hz[2:] - edges_hz[:-2]))[:, None]                         # Slaney area norm
    return weights.astype(np.float32)


@lru_cache(maxsize=None)
def _mel_basis(device: str) -> torch.Tensor:
    return torch.from_numpy(mel_filterbank()).to(device)                               # (64, 513)


@lru_cache(maxsize=None)
def _window(device: str) -> torch.Tensor:
    return torch.hann_window(N_FFT, periodic=True, device=device)                      # librosa's 'hann'


def log_mel(audio: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
    """THE mel front end: 16 kHz audio (..., N) -> log10 mel (..., F=64, T=N // 160).

    Accepts numpy (returns numpy float32) or torch (returns torch, differentiable, on its device).
    A 32 000-sample loop gives exactly (64, 200).
    """
    as_numpy = not isinstance(audio, torch.Tensor)
    x = torch.as_tensor(np.asarray(audio, dtype=np.float32)) if as_numpy else audio.float()
    lead = x.shape[:-1]
    x = x.reshape(-1, x.shape[-1])                                                     # (B, N)
    if x.shape[-1] < HOP:
        raise ValueError(f"log_mel needs at least {HOP} samples, got {x.shape[-1]}")
    mode = "reflect" if x.shape[-1] > PAD else "constant"                              # reflect needs N > pad
    x = torch.nn.functional.pad(x[:, None], (PAD, PAD), mode=mode)[:, 0]               # (B, N + 864)
    spec = torch.stft(x, N_FFT, hop_length=HOP, win_length=N_FFT, window=_window(str(x.device)),
                      center=False, return_complex=True).abs()                         # (B, 513, T)
    mel = _mel_basis(str(x.device)) @ spec                                             # (B, 64, T)
    out = torch.log10(mel.clamp_min(LOG_FLOOR)).reshape(*lead, N_MELS, -1)             # (..., 64, T)
    return out.numpy() if as_numpy else out


# ---------------------------------------------------------------------------------------------
# Standardisation: per mel band, over the training set (design.md §1).
# ---------------------------------------------------------------------------------------------
def band_stats(mels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """mels (N, F=64, T) -> mean (64,), std (64,), over all loops and frames."""
    mean = mels.mean(axis=(0, 2), dtype=np.float64)
    std = mels.std(axis=(0, 2), dtype=np.float64)
    return mean.astype(np.float32), np.maximum(std, STD_FLOOR).astype(np.float32)


def standardise(mel, mean, std):
    """(…, F=64, T) log mel -> z-scores per band. Works for numpy and torch alike."""
    return (mel - mean[:, None]) / std[:, None]


def destandardise(z, mean, std):
    """Inverse of `standardise`: z-scores (…, F=64, T) -> log10 mel."""
    return z * std[:, None] + mean[:, None]


# ---------------------------------------------------------------------------------------------
# Writing a data set safely: every file is written to a temporary name, then renamed, so a crash
# or kill never leaves a half-written wav, mel, manifest or stats file behind.
# ---------------------------------------------------------------------------------------------
MANIFEST_FIELDS = ["id", "source", "bar", "bpm", "genre"]
SKIP_FIELDS = ["file", "reason"]


def atomic_write(path: str | Path, write_fn) -> None:
    """Call write_fn(tmp_path) and rename the result onto `path` (atomic on POSIX)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write_fn(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_wav(path: str | Path, audio: np.ndarray, sr: int = SR) -> None:
    """Atomically write a mono float32 WAV."""
    import soundfile as sf

    def _write(tmp):
        sf.write(tmp, np.asarray(audio, dtype=np.float32), sr, subtype="FLOAT", format="WAV")
    atomic_write(path, _write)


def write_npy(path: str | Path, array: np.ndarray) -> None:
    """Atomically write a .npy file."""
    def _write(tmp):
        with open(tmp, "wb") as f:
            np.save(f, array)
    atomic_write(path, _write)


def write_csv(path: str | Path, fields: list[str], rows: list[dict]) -> None:
    """Atomically (re)write a whole CSV file."""
    def _write(tmp):
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=fields)
            w.writeheader()
            w.writerows(rows)
    atomic_write(path, _write)


def read_csv(path: str | Path) -> list[dict]:
    """Rows of a CSV written by `write_csv` (an empty list when the file does not exist)."""
    if not Path(path).exists():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def save_loop(data_dir: str | Path, loop_id: str, audio: np.ndarray) -> np.ndarray:
    """Write one kept loop (exactly LOOP_SAMPLES samples) as wav/<id>.wav and mel/<id>.npy; return its mel."""
    audio = np.asarray(audio, dtype=np.float32)
    if audio.shape != (LOOP_SAMPLES,):
        raise ValueError(f"a loop must be ({LOOP_SAMPLES},) samples, got {audio.shape}")
    mel = log_mel(audio)                                                               # (64, 200)
    write_wav(Path(data_dir) / "wav" / f"{loop_id}.wav", audio)
    write_npy(Path(data_dir) / "mel" / f"{loop_id}.npy", mel)
    return mel


def finalize_dataset(data_dir: str | Path, rows: list[dict], skipped: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """Write manifest.csv, skipped.csv and stats.npz (over every mel in the manifest); return the stats."""
    data_dir = Path(data_dir)
    if not rows:
        raise ValueError(f"no loops were kept in {data_dir}; see {data_dir / 'skipped.csv'}")
    write_csv(data_dir / "skipped.csv", SKIP_FIELDS, skipped)
    mels = np.stack([np.load(data_dir / "mel" / f"{r['id']}.npy") for r in rows])    # (N, 64, 200)
    mean, std = band_stats(mels)

    def _write(tmp):
        with open(tmp, "wb") as f:
            np.savez(f, mean=mean, std=std, n=len(rows))
    atomic_write(data_dir / "stats.npz", _write)
    # The manifest is written last: a data set with a manifest is complete.
    write_csv(data_dir / "manifest.csv", MANIFEST_FIELDS, rows)
    return mean, std


def load_stats(data_dir: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """mean (64,), std (64,) of a data set."""
    with np.load(Path(data_dir) / "stats.npz") as s:
        return s["mean"].astype(np.float32), s["std"].astype(np.float32)


def is_complete(data_dir: str | Path) -> bool:
    """A data set is usable once its manifest and stats exist (they are written last, atomically)."""
    return (Path(data_dir) / "manifest.csv").exists() and (Path(data_dir) / "stats.npz").exists()


# ---------------------------------------------------------------------------------------------
# The torch Dataset used by training (and by the feature-network classifiers).
# ---------------------------------------------------------------------------------------------
@dataclass
class LoopItem:
    mel: torch.Tensor    # (1, T=200, F=64) standardised
    label: int           # index into LoopMelDataset.genres


class LoopMelDataset(torch.utils.data.Dataset):
    """All mels of a data set in memory, standardised with its stats, as (1, T=200, F=64) tensors.

    `genres` is the sorted list of genre names; `labels[i]` indexes it. Items are (mel, label).
    """

    def __init__(self, data_dir: str | Path, ids: list[str] | None = None):
        self.data_dir = Path(data_dir)
        if not is_complete(self.data_dir):
            raise FileNotFoundError(f"{self.data_dir} is not a preprocessed loop data set "
                                    "(no manifest.csv/stats.npz): run preprocess.py or demoloops.py first")
        rows = read_csv(self.data_dir / "manifest.csv")
        if ids is not None:
            keep = set(ids)
            rows = [r for r in rows if r["id"] in keep]
        self.rows = rows
        self.mean, self.std = load_stats(self.data_dir)
        self.genres = sorted({r["genre"] for r in read_csv(self.data_dir / "manifest.csv")})
        self.labels = torch.tensor([self.genres.index(r["genre"]) for r in rows], dtype=torch.long)
        mels = np.stack([np.load(self.data_dir / "mel" / f"{r['id']}.npy") for r in rows]) if rows \
            else np.zeros((0, N_MELS, N_FRAMES), np.float32)                           # (N, 64, 200)
        z = standardise(mels, self.mean, self.std).astype(np.float32)                  # (N, 64, 200)
        self.mels = torch.from_numpy(z).transpose(1, 2).unsqueeze(1).contiguous()      # (N, 1, T=200, F=64)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.mels[i], self.labels[i]
