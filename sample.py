"""Sampling: trained generator -> mels -> vocoder -> loop WAVs, mel grids and a listening page.

Paper Section 4 (the MelGAN vocoder after the generator) and Figures 1 and 3 (mel grids). One loop:
z (32,) -> EMA generator -> (1, T=200, F=64) z-scores -> (F=64, T=200) log10 mel -> vocoder -> 32 000 samples
(2.000 s at 16 kHz), vocoded as one period of a loop, so it repeats without a click.

    python sample.py runs/drum_aisfx -n 100 --out samples/drum_aisfx [--seed 0] [--truncation 0.7]
                     [--repeat 4] [--bpm 90] [--vocoder checkpoints/melgan_drum.pt] [--real N]

writes loop_NNNN.wav, _x4.wav, .npy, .json, mel_NNNN.png, grid.png, index.html and vocoder.txt. Conditional
checkpoints: --genre, --variations-of, --morph. Every file and option: docs/modules.md, "sample.py".
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import fields
from pathlib import Path

import numpy as np
import pyrubberband as pyrb
import torch

import melgan
import train_melgan
from dataset import default_data_dir, split_ids
from plumbing import paths
from plumbing.audio_io import fix_length, peak_normalise
from plumbing.files import atomic_write, write_npy, write_wav
from mel import BPM, SR, from_gan, log_mel
from plumbing.checkpoint import CheckpointError, load_checkpoint
from plumbing.devices import default_device
from plumbing.page import PAGE_REPEAT, save_mel_grid, save_mel_image, write_genre_page, write_listening_page
from generator import BEFORE_KEY, Generator, GeneratorConfig
import conditional

GRID_LOOPS = 16          # loops shown in grid.png
QUICK_LOOPS = 8          # generated loops at the end of the quick start
QUICK_REAL = 4           # real loops beside them, through the same vocoder
NOISE_STREAM = 1         # SeedSequence key of the noise stream (the latents are stream 0: `seed` itself)
CKPT_KEYS = ("g_ema", "g_config", "mel_mean", "mel_std", "features", "loops", "step")
FOLDER_VOCODER = "vocoder.pt"   # a run or shipped folder (pretrained/<loops>/) may carry its vocoder beside latest.pt
NAMED_VOCODER = Path("samples") / "vocoder.txt"   # ... or name it: train.py's quick start writes this file
USER_ERROR = 2           # exit status for a run or checkpoint that is not there (as argparse's usage errors)


# ---------------------------------------------------------------------------------------------
# Generator loading and mel generation
# ---------------------------------------------------------------------------------------------
def resolve_checkpoint(run_or_ckpt: str | Path) -> Path:
    """A run directory means its latest checkpoint; a file is taken as it is. A name that is not there is also
    looked for among the default run folders ($PJLOOP_HOME/runs: `sample.py drum_aisfx` from anywhere)."""
    given = Path(run_or_ckpt)
    for p in (given, paths.runs() / given):            # an absolute path joins to itself
        p = p / "latest.pt" if p.is_dir() else p
        if p.is_file():
            return p
    raise FileNotFoundError(f"no checkpoint at {given} (give a run directory holding latest.pt, or a .pt file; "
                            f"a bare run name is also looked for in {paths.runs()})")


def load_generator(run_or_ckpt: str | Path, device: str | torch.device = "cpu"):
    """-> (EMA generator in eval mode on `device`, the checkpoint dict)."""
    ckpt = load_checkpoint(resolve_checkpoint(run_or_ckpt), map_location="cpu", required=CKPT_KEYS)
    known = {f.name for f in fields(GeneratorConfig)}                   # BEFORE_KEY also holds train.py's keys
    before = {k: v for k, v in BEFORE_KEY.items() if k in known}
    G = Generator(GeneratorConfig(**{**before, **ckpt["g_config"]}))      # an older checkpoint lacks new keys
    G.load_state_dict(ckpt["g_ema"])
    return G.to(device).eval().requires_grad_(False), ckpt


def default_out(ckpt_path: Path) -> Path:
    """Where sample.py writes without --out: <run>/samples beside the checkpoint, but for a shipped model
    (pretrained/<loops>/, part of the repository) $PJLOOP_HOME/samples/pretrained_<loops>."""
    folder = Path(ckpt_path).resolve().parent
    if folder.parent == paths.shipped().resolve():
        return paths.samples() / f"pretrained_{folder.name}"
    return folder / "samples"


def folder_vocoder(folder: Path) -> Path | None:
    """The vocoder a run or shipped folder carries (vocoder.pt beside latest.pt) or names (samples/vocoder.txt,
    written by train.py's quick start as 'arch:path'); None when it does neither (or the named file is gone)."""
    if (folder / FOLDER_VOCODER).is_file():
        return folder / FOLDER_VOCODER
    named = folder / NAMED_VOCODER
    if named.is_file():
        text = named.read_text().strip()
        path = Path(text.split(":", 1)[1]) if ":" in text else None
        if path is not None and path.is_file():
            return path
    return None


def noise_seed(seed: int) -> int:
    """The seed of the per-pixel noise for the loops of `seed`: derived, not `seed` itself, so the noise
    stream is not the very stream the latents z were drawn from."""
    return int(np.random.SeedSequence([seed, NOISE_STREAM]).generate_state(1)[0])


@torch.no_grad()
def mels_from_z(G, ckpt: dict, z: torch.Tensor, truncation: float = 1.0, noise_mode: str = "const",
                c: torch.Tensor | None = None) -> np.ndarray:
    """Latents z (B, 32) [, genres c (B,) for a conditional G] -> log10 mels (B, F=64, T=200), de-standardised
    with the checkpoint's stats. noise_mode "random" draws fresh per-loop noise from torch's global generator."""
    device = next(G.parameters()).device
    c = None if c is None else c.to(device)
    x = G(z.to(device), c, truncation_psi=truncation, noise_mode=noise_mode).float()    # (B, 1, T=200, F=64)
    return from_gan(x, ckpt["mel_mean"], ckpt["mel_std"])                              # (B, F=64, T=200)


@torch.no_grad()
def mels_from_ws(G, ckpt: dict, ws: torch.Tensor) -> np.ndarray:
    """Style codes ws (B, num_ws, w_dim) -> log10 mels (B, F=64, T=200), with the stored constant noise."""
    device = next(G.parameters()).device
    x = G.synthesis(ws.to(device), noise_mode="const").float()                         # (B, 1, T=200, F=64)
    return from_gan(x, ckpt["mel_mean"], ckpt["mel_std"])                              # (B, F=64, T=200)


def latents(n: int, seed: int, z_dim: int, batch: int = 64) -> torch.Tensor:
    """The n latents (n, z_dim) of `generate_mels(..., seed, batch)`, drawn batch by batch as it draws them."""
    gen = torch.Generator().manual_seed(seed)
    return torch.cat([torch.randn(min(batch, n - i), z_dim, generator=gen) for i in range(0, n, batch)]) \
        if n else torch.zeros(0, z_dim)


def balanced_labels(n: int, c_dim: int) -> torch.Tensor | None:
    """Loop i of a set from a conditional generator gets genre i mod K (every genre equally often)."""
    return torch.arange(n) % c_dim if c_dim else None


@torch.no_grad()
def generate_mels(G, ckpt: dict, n: int, seed: int = 0, truncation: float = 1.0, batch: int = 64,
                  noise_mode: str = "const", labels: torch.Tensor | None = None) -> np.ndarray:
    """n loops from fixed seeds -> log10 mels (n, F=64, T=200), de-standardised with the checkpoint's stats.

    noise_mode "const": every loop shares the generator's stored noise field; the loops depend on (seed, n)
    only, not on `batch` (pictures and listening pages). "random": fresh per-loop noise, as StyleGAN2's
    metric code and the authors' inference; seeded by `noise_seed(seed)`, so (seed, n, batch, device)
    reproduces the set (metrics: evaluate.generate_set). torch's global random state is left untouched.
    A conditional G takes `labels` (n,) genre indices, default `balanced_labels`."""
    device = next(G.parameters()).device
    labels = labels if labels is not None or not G.c_dim else balanced_labels(n, G.c_dim)
    zs = latents(n, seed, G.cfg.z_dim, batch)                                          # (n, 32)
    out = []
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(noise_seed(seed))
        for start in range(0, n, batch):
            z = zs[start:start + batch]                                                 # (b, 32)
            c = None if labels is None else labels[start:start + len(z)]                  # (b,)
            out.append(mels_from_z(G, ckpt, z, truncation, noise_mode, c))              # (b, 64, 200)
    return np.concatenate(out).astype(np.float32)                                      # (n, 64, 200)


# ---------------------------------------------------------------------------------------------
# Audio: seamless vocoding, tiling, tempo change
# ---------------------------------------------------------------------------------------------
def vocode_loops(vocoder, mels: np.ndarray, batch: int = 16) -> np.ndarray:
    """log10 mels (N, 64, T) -> seamless loops (N, T * 160), in batches."""
    return np.concatenate([np.asarray(vocoder(mels[i:i + batch]), dtype=np.float32).reshape(len(mels[i:i + batch]), -1)
                           for i in range(0, len(mels), batch)])


def tile(audio: np.ndarray, repeat: int) -> np.ndarray:
    """A loop played `repeat` times in a row."""
    return np.tile(audio, repeat)


def change_tempo(audio: np.ndarray, bpm: float) -> np.ndarray:
    """Time-stretch a 120-BPM bar to `bpm` (Rubber Band), the paper's stated workaround (Section 7).
    The loop is stretched as three copies in a row and the middle one kept, so the result loops as
    seamlessly as the input (Rubber Band has no wrap-around of its own). At 120 BPM the bar is returned as it
    is, which is what Rubber Band gives at ratio 1, without its start-up (a third of a second on a CPU)."""
    if bpm == BPM:
        return audio.astype(np.float32)
    n_out = int(round(len(audio) * BPM / bpm))
    out = pyrb.time_stretch(tile(audio.astype(np.float32), 3), SR, bpm / BPM)          # (~3 n_out,)
    return fix_length(out[n_out:], n_out)                                                # the middle copy


# ---------------------------------------------------------------------------------------------
# The command
# ---------------------------------------------------------------------------------------------
def write_samples(mels: np.ndarray, vocoder, out_dir: str | Path, repeat: int = PAGE_REPEAT,
                  bpm: float | None = None, info: str = "", real_mels: np.ndarray | None = None,
                  recipes: list[dict] | None = None) -> list[str]:
    """Vocode log10 mels (N, 64, 200) and write every file of the module docstring; return the loop names.
    real_mels (M, 64, 200): real loops' mels, vocoded alike as loop_real_0000.wav ... on the same page.
    `recipes`: one dict per loop (seed, genre, truncation, ...), written beside its WAV as loop_<name>.json."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    n_real = 0 if real_mels is None else len(real_mels)
    all_mels = mels if not n_real else np.concatenate([mels, real_mels])               # (N + M, 64, 200)
    audio = vocode_loops(vocoder, all_mels)                                            # (N + M, 32000)
    names = []
    for i, (mel, wav) in enumerate(zip(all_mels, audio)):
        name = f"{i:04d}" if i < len(mels) else f"real_{i - len(mels):04d}"
        wav = peak_normalise(wav)
        if bpm is not None:
            wav = change_tempo(wav, bpm)
        write_wav(out / f"loop_{name}.wav", wav)
        write_wav(out / f"loop_{name}_x{repeat}.wav", tile(wav, repeat))
        write_npy(out / f"loop_{name}.npy", mel)
        if recipes is not None and i < len(mels):       # real loops have no recipe
            text = json.dumps({**recipes[i], "bpm": bpm}, indent=1)
            atomic_write(out / f"loop_{name}.json", lambda tmp, t=text: Path(tmp).write_text(t))
        save_mel_image(mel, out / f"mel_{name}.png")
        names.append(name)
    save_mel_grid(mels[:GRID_LOOPS], out / "grid.png", title=info or None)
    atomic_write(out / "vocoder.txt", lambda tmp: Path(tmp).write_text(vocoder.name + "\n"))
    write_listening_page(out, names[:len(mels)], info=f"{info} | vocoder: {vocoder.name}", repeat=repeat,
                         real_names=names[len(mels):])
    return names


def real_loop_mels(data_dir: str | Path, n: int) -> np.ndarray:
    """The first n held-out real loops of a data set (dataset.split_ids 'heldout': source files that neither
    G nor the vocoder trained on; all loops of a set too small to hold any out) -> their log10 mels
    (n, 64, 200), computed from the wavs."""
    ids = split_ids(data_dir, "heldout") or split_ids(data_dir, "train")
    audio = train_melgan.load_loop_audio(data_dir, ids[:n])                             # (n, 32000)
    return log_mel(audio).numpy()                                                      # (n, 64, 200)


def finish_quick_start(run_dir: str | Path, data_dir: str | Path | None, loops: str,
                       vocoder_path: str | Path | None = None, device: str | None = None,
                       n: int = QUICK_LOOPS, n_real: int = QUICK_REAL, seed: int = 0) -> Path:
    """The end of train.py's quick start: n loops of the run's latest checkpoint and n_real held-out real
    loops, all through a trained vocoder -- `vocoder_path`, else the data set's (train_melgan.ensure_vocoder
    trains it once, announced, about 8 minutes on a CPU) -- as WAVs (one bar and tiled x4), mel images, grid
    and listening page in <run_dir>/samples. data_dir None: the `loops` demo set. -> that folder."""
    data_dir = Path(data_dir) if data_dir is not None else default_data_dir(loops)
    if vocoder_path is None:
        vocoder_path = train_melgan.ensure_vocoder(loops, data_dir, device=device)
    G, ckpt = load_generator(run_dir, "cpu")
    vocoder = melgan.load_vocoder(vocoder_path, loops=loops, device="cpu")
    out = resolve_checkpoint(run_dir).parent / "samples"
    info = f"{loops} loops, features {','.join(ckpt['features']) or 'none'}, step {ckpt['step']}, seed {seed}"
    labels = balanced_labels(n, G.c_dim)                   # a conditional run: every genre in turn
    write_samples(generate_mels(G, ckpt, n, seed=seed, labels=labels), vocoder, out, info=info,
                  real_mels=real_loop_mels(data_dir, n_real) if n_real else None)
    print(f"wrote {n} generated and {n_real} real loops (vocoder: {vocoder.name}) to {out}; "
          f"open {out / 'index.html'} in a browser")
    return out


# ---------------------------------------------------------------------------------------------
# Control: genres, variations, morphs (conditional.py has the latent arithmetic)
# ---------------------------------------------------------------------------------------------
def recipe(seed: int | None, genre: str | None, truncation: float, z: torch.Tensor | None, **how) -> dict:
    """What makes one loop again exactly: its seed, genre, truncation, how it was made, and z itself."""
    return {"seed": seed, "genre": genre, "truncation": truncation, **how,
            "z": None if z is None else [float(v) for v in z]}


@torch.no_grad()
def genre_sets(G, ckpt: dict, genre_ids: list[int], n: int, seed: int, truncation: float, batch: int = 64):
    """-> [(genre name, mels (n, 64, 200), recipes)]: loop i of every genre has seed `seed + i`, so one row of
    latents is heard in every genre."""
    z = torch.stack([conditional.z_of_seed(seed + i, G.z_dim) for i in range(n)])           # (n, z_dim)
    sets = []
    for g in genre_ids:
        c = torch.full((n,), g, dtype=torch.long)                                           # (n,)
        mels = np.concatenate([mels_from_z(G, ckpt, z[i:i + batch], truncation, "const", c[i:i + batch])
                               for i in range(0, n, batch)])                                  # (n, 64, 200)
        name = ckpt["genres"][g]
        sets.append((name, mels, [recipe(seed + i, name, truncation, z[i]) for i in range(n)]))
    return sets


def one_genre(G, ckpt: dict, asked: list[str] | None, how_many: tuple[int, ...] = (1,)) -> list[int | None]:
    """The genre(s) of a variation (1) or a morph (1 or 2: A's and B's); None for an unconditional G."""
    ids = conditional.resolve_genres(asked, ckpt.get("genres"))
    if not G.c_dim:
        return [None]
    if ids is None or len(ids) not in how_many:
        raise ValueError(f"this checkpoint is conditional: give {' or '.join(map(str, how_many))} --genre "
                         f"(known: {', '.join(ckpt['genres'])})")
    return ids


@torch.no_grad()
def variations(G, ckpt: dict, seed: int, n: int, spread: float, genre: int | None, truncation: float):
    """-> mels (1 + n, 64, 200), recipes: the loop of `seed` first, then n variations of it."""
    z = torch.cat([conditional.z_of_seed(seed, G.z_dim)[None],
                   conditional.variation_latents(seed, n, spread, G.z_dim)])                   # (1 + n, z_dim)
    c = conditional.labels_or_none(G, genre, len(z))
    name = None if genre is None else ckpt["genres"][genre]
    recipes = [recipe(seed, name, truncation, z[0])] + [
        recipe(None, name, truncation, z[i + 1], variation_of=seed, spread=spread, index=i) for i in range(n)]
    return mels_from_z(G, ckpt, z, truncation, "const", c), recipes


@torch.no_grad()
def morph(G, ckpt: dict, seeds: tuple[int, int], steps: int, genres: list[int | None], truncation: float):
    """-> mels (K, 64, 200), recipes: K loops from the loop of seed A (genre A) to that of seed B (genre B)."""
    ga, gb = genres[0], genres[-1]
    c = [None if g is None else torch.tensor(g) for g in (ga, gb)]
    ws = conditional.morph_ws(G, conditional.z_of_seed(seeds[0], G.z_dim), conditional.z_of_seed(seeds[1], G.z_dim),
                              steps, c[0], c[1], truncation)                                   # (K, num_ws, w_dim)
    names = [None if g is None else ckpt["genres"][g] for g in (ga, gb)]
    recipes = [recipe(None, names[0] if k == 0 else names[1] if k == steps - 1 else None, truncation, None,
                      morph=list(seeds), morph_genres=names, steps=steps, index=k, t=k / (steps - 1))
               for k in range(steps)]
    return mels_from_ws(G, ckpt, ws), recipes


def write_morph_bars(mels: np.ndarray, vocoder, out: Path, bpm: float | None = None) -> Path:
    """The K bars of a morph in sequence as one WAV: their mels joined in time, (64, K * 200), and vocoded as ONE
    loop, so every bar line is inside the vocoder's context (no seam), and so is the wrap back to bar 1."""
    joined = np.concatenate(list(mels), axis=1)[None]                                        # (1, 64, K * 200)
    audio = peak_normalise(vocode_loops(vocoder, joined)[0])                                 # (K * 32 000,)
    if bpm is not None:
        audio = change_tempo(audio, bpm)
    write_wav(out / "morph.wav", audio)
    write_npy(out / "morph.npy", joined[0])
    return out / "morph.wav"


# ---------------------------------------------------------------------------------------------
# The command
# ---------------------------------------------------------------------------------------------
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run", help="a run directory (uses its latest.pt) or a checkpoint file")
    ap.add_argument("-n", type=int, default=16, help="number of loops (per genre with --genre; variations "
                                                     "with --variations-of)")
    ap.add_argument("--out", default=None, help="output directory (default: <run>/samples; for a shipped "
                    "model $PJLOOP_HOME/samples/pretrained_<loops>)")
    ap.add_argument("--seed", type=int, default=0, help="latent seed (with --genre: loop i has seed SEED + i)")
    ap.add_argument("--truncation", type=float, default=1.0, help="psi; < 1 trades diversity for quality "
                                                                  "(conditional: towards the genre's average)")
    ap.add_argument("--repeat", type=int, default=PAGE_REPEAT, help="also write each loop tiled this many times")
    ap.add_argument("--bpm", type=float, default=None, help="export at another tempo (time-stretched), beats/min")
    ap.add_argument("--vocoder", default=None, help="vocoder checkpoint (train_melgan.py) or griffin-lim (default: "
                    "the run folder's vocoder.pt, else the data set's trained vocoder under "
                    "$PJLOOP_HOME/checkpoints, else Griffin-Lim)")
    ap.add_argument("--real", type=int, default=0, help="also vocode this many held-out real loops of the "
                    "training data set, beside the generated ones (default 0)")
    ap.add_argument("--genre", nargs="+", default=None, metavar="NAME",
                    help="genre(s) of a conditional checkpoint, or 'all'; with --morph: A's and B's")
    ap.add_argument("--variations-of", type=int, default=None, metavar="SEED",
                    help="-n loops near the loop of SEED (the first loop of --seed SEED)")
    ap.add_argument("--spread", type=float, default=conditional.DEFAULT_SPREAD,
                    help="how far variations stray, in latent standard deviations: 0 copies, 0.3 close, 1+ loose")
    ap.add_argument("--morph", type=int, nargs=2, default=None, metavar=("SEED_A", "SEED_B"),
                    help="walk from the loop of SEED_A to the loop of SEED_B in w space")
    ap.add_argument("--steps", type=int, default=8, help="--morph: loops (bars) in the walk, A and B included")
    args = ap.parse_args(argv)
    device = default_device()
    G, ckpt = load_generator(args.run, device)
    out = Path(args.out) if args.out else default_out(resolve_checkpoint(args.run))
    genre_ids = conditional.resolve_genres(args.genre, ckpt.get("genres"))   # an unknown name stops here
    if args.morph is not None and args.variations_of is not None:
        raise ValueError("give --morph or --variations-of, not both")
    data_dir = (ckpt.get("config") or {}).get("data") or None
    vocoder = melgan.load_vocoder(args.vocoder or folder_vocoder(resolve_checkpoint(args.run).parent),
                                  loops=ckpt["loops"], data_dir=data_dir)     # a shipped model's own vocoder first
    info = (f"{ckpt['loops']} loops, features {','.join(ckpt['features']) or 'none'}, step {ckpt['step']}, "
            f"seed {args.seed}, truncation {args.truncation}" + (f", {args.bpm} BPM" if args.bpm else ""))
    mode = "plain"
    if args.morph is not None:
        mode, genres = "morph", one_genre(G, ckpt, args.genre, (1, 2))
        mels, recipes = morph(G, ckpt, tuple(args.morph), args.steps, genres, args.truncation)
        info += f", morph {args.morph[0]} -> {args.morph[1]} in {args.steps} bars"
        write_samples(mels, vocoder, out, repeat=args.repeat, bpm=args.bpm, info=info, recipes=recipes)
        write_morph_bars(mels, vocoder, out, args.bpm)
    elif args.variations_of is not None:
        mode, (genre,) = "variations", one_genre(G, ckpt, args.genre)
        mels, recipes = variations(G, ckpt, args.variations_of, args.n, args.spread, genre, args.truncation)
        info += f", variations of seed {args.variations_of} (spread {args.spread})"
        write_samples(mels, vocoder, out, repeat=args.repeat, bpm=args.bpm, info=info, recipes=recipes)
    elif genre_ids is not None:
        mode, sections = "genre", []
        for name, mels, recipes in genre_sets(G, ckpt, genre_ids, args.n, args.seed, args.truncation):
            sections.append((name, write_samples(mels, vocoder, out / name, repeat=args.repeat, bpm=args.bpm,
                                                 info=f"{info}, genre {name}", recipes=recipes)))
        write_genre_page(out, sections, f"{info} | vocoder: {vocoder.name}", args.repeat)
    else:
        labels = balanced_labels(args.n, G.c_dim)
        mels = generate_mels(G, ckpt, args.n, seed=args.seed, truncation=args.truncation, labels=labels)
        z = latents(args.n, args.seed, G.z_dim)                                            # as generate_mels
        recipes = [recipe(args.seed, None if labels is None else ckpt["genres"][int(labels[i])], args.truncation,
                          z[i], index=i) for i in range(args.n)]
        real = real_loop_mels(data_dir or default_data_dir(ckpt["loops"]), args.real) if args.real else None
        write_samples(mels, vocoder, out, repeat=args.repeat, bpm=args.bpm, info=info, recipes=recipes,
                      real_mels=real)
    atomic_write(out / "info.json", lambda tmp: Path(tmp).write_text(json.dumps(
        {"checkpoint": str(resolve_checkpoint(args.run)), "mode": mode, "n": args.n, "seed": args.seed,
         "truncation": args.truncation, "bpm": args.bpm, "vocoder": vocoder.name, "genres": ckpt.get("genres"),
         "asked": args.genre, "variations_of": args.variations_of, "spread": args.spread, "morph": args.morph,
         "steps": args.steps}, indent=1)))
    print(f"wrote {mode} loops to {out} (vocoder: {vocoder.name}); open {out / 'index.html'} in a browser")


if __name__ == "__main__":
    try:
        main()
    except FileNotFoundError as e:               # no such run folder or checkpoint: one line, a usage error
        print(f"sample.py: {e}", file=sys.stderr)
        sys.exit(USER_ERROR)
    except (CheckpointError, ValueError) as e:   # a bad checkpoint, an unknown genre: one line, no traceback
        sys.exit(f"sample.py: {e}")
