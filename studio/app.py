"""The loop studio: sample.py's controls (genre, seed, truncation, variations, morphs, tempo) behind a local web
page. The paper's future work asks for control (Section 7); the generator, vocoder and latent arithmetic are
sample.py's and conditional.py's, this file only puts them behind JSON endpoints and one worker (what a request
may ask for is checked in studio/inputs.py).

One loop: z (32,) of `seed` [+ genre] -> EMA generator -> log10 mel (F=64, T=200) -> vocoder -> 32 000 samples
(one bar at 120 BPM), peak-normalised and stretched to the asked BPM exactly as sample.write_samples does, so
the recipe beside it remakes it with sample.py. One request, one folder under the output folder:

    <out>/0007_loop/        loop_seed42_house_120bpm.wav, _x4.wav, .json (the recipe), _mel.png
    <out>/0008_variations/  the loop and its N relatives (..._var1 ... _varN), each as above
    <out>/0009_morph/       morph_seed42_house_to_seed9_techno_120bpm_8bars.wav, .json, _mel.png

Generation runs in ONE worker thread fed by a first-in-first-out queue: requests are answered in the order
they came, and never compete for the two cores. Not in the paper.
"""
from __future__ import annotations

import asyncio
import itertools
import json
import os
import random
import re
import shlex
import sys
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

import conditional
import melgan
import sample
from mel import BPM
from plumbing import paths
from plumbing.audio_io import peak_normalise
from plumbing.checkpoint import CheckpointError
from plumbing.files import atomic_write, write_wav
from plumbing.page import PAGE_REPEAT, save_mel_image
from studio.inputs import (BPM_RANGE, MAX_BARS, MAX_SPREAD, MAX_VARIATIONS, SEED_MAX, TRUNCATION_MAX, StudioError,
                           body_value, one_line, parse_bpm, parse_genre, parse_seed, parse_spread, parse_truncation,
                           parse_whole)

STATIC = Path(__file__).resolve().parent / "static"
DEFAULT_LOOPS = "drum"                 # with no model named, the studio plays the shipped drum model
FOLDER_VOCODER = sample.FOLDER_VOCODER   # a run or shipped folder may carry its vocoder beside latest.pt
DEFAULTS = {"truncation": 1.0, "bpm": BPM, "n": 8, "spread": conditional.DEFAULT_SPREAD, "bars": 8}
REPEAT = PAGE_REPEAT                   # the long download: the bar tiled x4, as sample.py's _x4.wav
STRETCH_WORKERS = 4                    # Rubber Band runs as a subprocess: stretch a row of loops side by side
WARM_UP_SEED = 0                       # one throw-away loop at start-up, so the first Make is as fast as the rest


class GenerationFailed(RuntimeError):
    """Something broke inside the worker (a full disk, a vocoder error): one line for the page (HTTP 500); the
    traceback goes to the terminal that started the studio."""


# ---------------------------------------------------------------------------------------------
# Names and the sample.py command that remakes a file
# ---------------------------------------------------------------------------------------------
def name_part(genre: str | None) -> str:
    """A genre as a file-name part: letters, digits, - and _ only ("hip hop" -> "hip-hop")."""
    return "" if genre is None else re.sub(r"[^A-Za-z0-9_-]+", "-", genre).strip("-") or "genre"


def loop_stem(seed: int, genre: str | None, bpm: float, variation: int | None = None) -> str:
    """loop_seed42_house_120bpm[_var3]: the seed, genre and tempo of a loop in its file names."""
    parts = [f"loop_seed{seed}", name_part(genre), f"{bpm:g}bpm", "" if variation is None else f"var{variation}"]
    return "_".join(p for p in parts if p)


def morph_stem(seeds: tuple[int, int], genres: tuple[str | None, str | None], bpm: float, bars: int) -> str:
    """morph_seed42_house_to_seed9_techno_120bpm_8bars."""
    a, b = ("_".join(p for p in (f"seed{s}", name_part(g)) if p) for s, g in zip(seeds, genres))
    return f"morph_{a}_to_{b}_{bpm:g}bpm_{bars}bars"


def remake_command(source: str, vocoder: str, how: list[str], bpm: float, out: str = "remade") -> str:
    """The `python sample.py ...` line that writes the same audio again (sample.py's --truncation and --bpm
    are floats, and repr() of a float reads back as the same float)."""
    words = ["python", "sample.py", source, *how, "--bpm", repr(float(bpm)), "--vocoder", vocoder, "--out", out]
    return " ".join(shlex.quote(w) for w in words)


def loop_how(seed: int, genre: str | None, truncation: float) -> tuple[list[str], str]:
    """sample.py's arguments for the loop of seed [in genre], and where it writes it (under --out)."""
    how = ["-n", "1", "--seed", str(seed)] + (["--genre", genre] if genre else []) + ["--truncation", repr(truncation)]
    return how, f"{genre}/loop_0000.wav" if genre else "loop_0000.wav"


def variations_how(seed: int, genre: str | None, truncation: float, n: int, spread: float) -> list[str]:
    """sample.py's arguments for seed's loop and n variations: loop_0000.wav is the loop, loop_000k.wav var k."""
    return (["-n", str(n), "--variations-of", str(seed), "--spread", repr(spread)]
            + (["--genre", genre] if genre else []) + ["--truncation", repr(truncation)])


def morph_how(seeds: tuple[int, int], genres: tuple[str | None, str | None], truncation: float,
              bars: int) -> list[str]:
    """sample.py's arguments for the morph: it writes morph.wav."""
    named = [g for g in genres if g]
    genre_args = [] if not named else ["--genre", *(named[:1] if genres[0] == genres[1] else named)]
    return ["--morph", str(seeds[0]), str(seeds[1]), "--steps", str(bars), *genre_args, "--truncation",
            repr(truncation)]


# ---------------------------------------------------------------------------------------------
# Start-up: the generator, its vocoder, the output folder
# ---------------------------------------------------------------------------------------------
def vocoder_for(ckpt_path: Path, ckpt: dict, asked: str | None) -> tuple[melgan.Vocoder, str]:
    """-> (vocoder, what to pass as sample.py --vocoder). `asked` (a path or griffin-lim) wins; then the folder's
    own; then the data set's default vocoder, as sample.py resolves it; then Griffin-Lim (melgan says so)."""
    path = asked or sample.folder_vocoder(ckpt_path.parent)
    data_dir = (ckpt.get("config") or {}).get("data") or None
    if path is None:
        path = melgan.trained_default(ckpt["loops"], data_dir)
    vocoder = melgan.load_vocoder(path, loops=ckpt["loops"], data_dir=data_dir)
    return vocoder, melgan.GriffinLimVocoder.name if vocoder.name == melgan.GriffinLimVocoder.name \
        else str(Path(path).resolve())


def source_checkpoint(source: str | Path | None) -> Path:
    """The checkpoint a studio plays: `source` as sample.py resolves it, or the shipped drum model. One-line
    FileNotFoundError when there is none (a checkout without the shipped models)."""
    if source is None:
        default = paths.shipped() / DEFAULT_LOOPS
        try:
            return sample.resolve_checkpoint(default)
        except FileNotFoundError:
            raise FileNotFoundError(f"no shipped model in {paths.shown(default)}: pass a run folder or a checkpoint, "
                                    f"e.g. python -m studio runs/drum_scnn_loop") from None
    return sample.resolve_checkpoint(source)


# ---------------------------------------------------------------------------------------------
# The studio: what the page's three buttons do
# ---------------------------------------------------------------------------------------------
@dataclass
class Studio:
    """A loaded generator and vocoder, the output folder and the single worker that uses them."""
    G: torch.nn.Module
    ckpt: dict
    vocoder: melgan.Vocoder
    vocoder_arg: str                      # sample.py --vocoder for the remake commands
    checkpoint: Path
    out: Path
    worker: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(1, "studio-worker"))
    stretcher: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(STRETCH_WORKERS, "stretch"))
    rng: random.Random = field(default_factory=random.SystemRandom)

    def __post_init__(self):
        self.out.mkdir(parents=True, exist_ok=True)
        taken = [int(p.name.split("_")[0]) for p in self.out.iterdir() if re.match(r"\d+_", p.name)]
        self.counter = itertools.count(max(taken, default=0) + 1)     # a restarted studio overwrites nothing

    @property
    def genres(self) -> list[str] | None:
        return self.ckpt.get("genres") if self.G.c_dim else None

    def info(self) -> dict:
        """What the page needs to draw its controls."""
        return {"loops": self.ckpt["loops"], "genres": self.genres, "step": self.ckpt["step"],
                "features": self.ckpt["features"], "checkpoint": str(self.checkpoint), "vocoder": self.vocoder.name,
                "limits": {"seed_max": SEED_MAX, "bpm": list(BPM_RANGE), "truncation_max": TRUNCATION_MAX,
                           "bars": MAX_BARS, "variations": MAX_VARIATIONS, "spread": MAX_SPREAD},
                "defaults": DEFAULTS}

    # -- requests -> checked arguments (in the request's thread: a refusal never waits in the queue) --------
    def loop_args(self, body: dict) -> dict:
        return {"seed": parse_seed(body.get("seed"), self.rng), "genre": parse_genre(body.get("genre"), self.genres),
                "truncation": parse_truncation(body_value(body, "truncation", DEFAULTS["truncation"])),
                "bpm": parse_bpm(body_value(body, "bpm", DEFAULTS["bpm"]))}

    def variations_args(self, body: dict) -> dict:
        return {**self.loop_args(body), "n": parse_whole(body_value(body, "n", DEFAULTS["n"]),
                                                       "n (how many variations)", 1, MAX_VARIATIONS),
                "spread": parse_spread(body_value(body, "spread", DEFAULTS["spread"]))}

    def morph_args(self, body: dict) -> dict:
        genre_a = parse_genre(body.get("genre_a", body.get("genre")), self.genres)
        return {"seeds": (parse_seed(body.get("seed_a", body.get("seed")), self.rng),
                          parse_seed(body.get("seed_b"), self.rng)),
                "genres": (genre_a, parse_genre(body.get("genre_b") or genre_a, self.genres)),
                "truncation": parse_truncation(body_value(body, "truncation", DEFAULTS["truncation"])),
                "bpm": parse_bpm(body_value(body, "bpm", DEFAULTS["bpm"])),
                "bars": parse_whole(body_value(body, "bars", DEFAULTS["bars"]), "bars (a morph's length)", 2, MAX_BARS)}

    def genre_id(self, genre: str | None) -> int | None:
        return None if genre is None else self.genres.index(genre)

    # -- the work (in the worker thread) --------------------------------------------------------------------
    def folder(self, kind: str) -> Path:
        path = self.out / f"{next(self.counter):04d}_{kind}"
        path.mkdir(parents=True)
        return path

    def command(self, how: list[str], bpm: float) -> str:
        return remake_command(str(self.checkpoint), self.vocoder_arg, how, bpm)

    def url(self, path: Path) -> str:
        return "/files/" + path.relative_to(self.out).as_posix()

    def bars(self, mels: np.ndarray, bpm: float) -> list[np.ndarray]:
        """log10 mels (N, 64, 200) -> N bars at `bpm`, as sample.write_samples makes them (peak-normalised,
        then stretched; Rubber Band's runs side by side)."""
        audio = sample.vocode_loops(self.vocoder, mels)                                 # (N, 32 000)
        return list(self.stretcher.map(lambda a: sample.change_tempo(peak_normalise(a), bpm), audio))

    def write_loop(self, folder: Path, stem: str, mel: np.ndarray, bar: np.ndarray, recipe: dict,
                   bpm: float) -> dict:
        """One loop's files: the bar, the bar x4, the recipe (sample.py's loop_NNNN.json fields) and the mel."""
        write_wav(folder / f"{stem}.wav", bar)
        write_wav(folder / f"{stem}_x{REPEAT}.wav", sample.tile(bar, REPEAT))
        text = json.dumps({**recipe, "bpm": bpm}, indent=1)
        atomic_write(folder / f"{stem}.json", lambda tmp: Path(tmp).write_text(text))
        save_mel_image(mel, folder / f"{stem}_mel.png")
        return {"name": stem, "wav": self.url(folder / f"{stem}.wav"),
                "wav_x4": self.url(folder / f"{stem}_x{REPEAT}.wav"), "recipe_url": self.url(folder / f"{stem}.json"),
                "mel": self.url(folder / f"{stem}_mel.png"), "recipe": {**recipe, "bpm": bpm},
                "samples": len(bar), "seconds": len(bar) / sample.SR}

    def make_loop(self, seed: int, genre: str | None, truncation: float, bpm: float) -> dict:
        """The loop of `seed` [in `genre`] at psi `truncation`, one bar at `bpm`."""
        z = conditional.z_of_seed(seed, self.G.z_dim)                                   # (32,)
        c = conditional.labels_or_none(self.G, self.genre_id(genre), 1)                 # (1,) or None
        mels = sample.mels_from_z(self.G, self.ckpt, z[None], truncation, "const", c)  # (1, 64, 200)
        how, remade = loop_how(seed, genre, truncation)
        # sample.py's recipe for this loop: its genre mode writes no index, its plain mode index 0
        recipe = sample.recipe(seed, genre, truncation, z, **({} if genre else {"index": 0}))
        folder = self.folder("loop")
        loop = self.write_loop(folder, loop_stem(seed, genre, bpm), mels[0], self.bars(mels, bpm)[0], recipe, bpm)
        return {**loop, "command": self.command(how, bpm), "remade": f"remade/{remade}"}

    def make_variations(self, seed: int, genre: str | None, truncation: float, bpm: float, n: int,
                        spread: float) -> dict:
        """The loop of `seed` and n relatives `spread` latent standard deviations away (sample.variations)."""
        mels, recipes = sample.variations(self.G, self.ckpt, seed, n, spread, self.genre_id(genre), truncation)
        folder = self.folder("variations")
        loops = [self.write_loop(folder, loop_stem(seed, genre, bpm, k or None), mel, bar, r, bpm)
                 for k, (mel, bar, r) in enumerate(zip(mels, self.bars(mels, bpm), recipes))]
        how = variations_how(seed, genre, truncation, n, spread)
        return {"loops": loops, "seed": seed, "command": self.command(how, bpm),
                "remade": "remade/loop_0000.wav (the loop), remade/loop_000K.wav (variation K)"}

    def make_morph(self, seeds: tuple[int, int], genres: tuple[str | None, str | None], truncation: float,
                   bpm: float, bars: int) -> dict:
        """`bars` bars walking from the loop of seed A (genre A) to that of seed B (genre B), as ONE wav
        vocoded in one piece (sample.write_morph_bars), so no bar line has a seam."""
        ids = [self.genre_id(g) for g in genres]
        mels, recipes = sample.morph(self.G, self.ckpt, seeds, bars, ids, truncation)  # (K, 64, 200)
        folder = self.folder("morph")
        stem = morph_stem(seeds, genres, bpm, bars)
        wav = sample.write_morph_bars(mels, self.vocoder, folder, bpm)                 # folder/morph.wav
        os.replace(wav, folder / f"{stem}.wav")
        os.replace(folder / "morph.npy", folder / f"{stem}.npy")
        text = json.dumps([{**r, "bpm": bpm} for r in recipes], indent=1)   # sample.py's loop_NNNN.json, bar by bar
        atomic_write(folder / f"{stem}.json", lambda tmp: Path(tmp).write_text(text))
        save_mel_image(np.concatenate(list(mels), axis=1), folder / f"{stem}_mel.png")  # (64, K * 200)
        samples = sf.info(folder / f"{stem}.wav").frames
        how = morph_how(seeds, genres, truncation, bars)
        return {"name": stem, "wav": self.url(folder / f"{stem}.wav"), "recipe_url": self.url(folder / f"{stem}.json"),
                "mel": self.url(folder / f"{stem}_mel.png"), "bars": bars, "seeds": list(seeds), "genres": list(genres),
                "samples": samples, "seconds": samples / sample.SR, "recipes": [{**r, "bpm": bpm} for r in recipes],
                "command": self.command(how, bpm),
                "remade": "remade/morph.wav"}

    def warm_up(self) -> None:
        """One loop through generator and vocoder, thrown away: the first real request pays no start-up."""
        z = conditional.z_of_seed(WARM_UP_SEED, self.G.z_dim)[None]                    # (1, 32)
        c = conditional.labels_or_none(self.G, 0, 1)
        sample.vocode_loops(self.vocoder, sample.mels_from_z(self.G, self.ckpt, z, 1.0, "const", c))

    # -- the queue ------------------------------------------------------------------------------------------
    async def run(self, work, **kwargs) -> dict:
        """Do `work` in the single worker (first in, first out) and say how long it waited and took."""
        asked = time.perf_counter()

        def timed():
            start = time.perf_counter()
            try:
                result = work(**kwargs)
            except Exception as e:                               # any failure: the page gets one line
                traceback.print_exc(file=sys.stderr)
                raise GenerationFailed(f"generation failed: {one_line(e)}") from e
            return {**result, "waited_s": round(start - asked, 3), "took_s": round(time.perf_counter() - start, 3)}
        return await asyncio.wrap_future(self.worker.submit(timed))


def open_studio(source: str | Path | None, out: str | Path | None = None, vocoder: str | None = None,
                warm_up: bool = True) -> Studio:
    """Load what `python -m studio SOURCE` plays. FileNotFoundError / CheckpointError: one line."""
    path = source_checkpoint(source)
    G, ckpt = sample.load_generator(path, "cpu")
    voc, voc_arg = vocoder_for(path, ckpt, vocoder)
    studio = Studio(G, ckpt, voc, voc_arg, path.resolve(), Path(out) if out is not None else paths.studio_out())
    if warm_up:
        studio.warm_up()
    return studio


# ---------------------------------------------------------------------------------------------
# HTTP: the page, its files, three JSON endpoints; every refusal one line under "error"
# ---------------------------------------------------------------------------------------------
async def json_body(request: Request) -> dict:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise StudioError("the request body must be a JSON object, e.g. {\"seed\": 42}") from None
    if not isinstance(body, dict):
        raise StudioError("the request body must be a JSON object, e.g. {\"seed\": 42}")
    return body


def create_app(studio: Studio) -> FastAPI:
    """The FastAPI app of one studio: GET / (the page), /api/info, /files/...; POST /api/loop, /api/variations,
    /api/morph. A refused request is HTTP 400 {"error": one line}; a failure inside the worker 500 likewise."""
    app = FastAPI(title="pjloop studio", docs_url=None, redoc_url=None, openapi_url=None)
    app.mount("/files", StaticFiles(directory=studio.out), name="files")
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.exception_handler(StudioError)
    async def refused(request: Request, e: StudioError):
        return JSONResponse({"error": str(e)}, status_code=400)

    @app.exception_handler(GenerationFailed)
    async def failed(request: Request, e: GenerationFailed):
        return JSONResponse({"error": str(e)}, status_code=500)

    @app.get("/")
    def page():
        return FileResponse(STATIC / "index.html")

    @app.get("/api/info")
    def info():
        return studio.info()

    @app.post("/api/loop")
    async def loop(request: Request):
        return await studio.run(studio.make_loop, **studio.loop_args(await json_body(request)))

    @app.post("/api/variations")
    async def variations(request: Request):
        return await studio.run(studio.make_variations, **studio.variations_args(await json_body(request)))

    @app.post("/api/morph")
    async def morph(request: Request):
        return await studio.run(studio.make_morph, **studio.morph_args(await json_body(request)))

    return app


START_ERRORS = (FileNotFoundError, CheckpointError)   # what open_studio says in one line
