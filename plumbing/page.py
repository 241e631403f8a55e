"""The pictures and the listening page of sample.py and train.py: mel grids (paper Figures 1 and 3), one small
mel image per loop, and index.html, a page that plays every loop once and tiled (the paper's listening test,
Section 6, played each loop four times) and opens from disk.

    mels    (N, 64, T) log10 mel power, low frequencies drawn at the bottom
    files   loop_<name>.wav, loop_<name>_x<repeat>.wav and mel_<name>.png beside index.html
"""
from __future__ import annotations

import html
from pathlib import Path

import matplotlib
matplotlib.use("Agg")            # files only, no display; chosen before pyplot is imported
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np

from mel import LOG_FLOOR
from plumbing.files import atomic_write

GRID_COLS = 4            # mel grid layout, like the paper's figures
PAGE_REPEAT = 4          # the listening test played each loop 4 times (paper Section 6)


def save_mel_grid(mels: np.ndarray, path: str | Path, title: str | None = None, cols: int = GRID_COLS) -> None:
    """log10 mels (N, 64, T) -> one PNG grid, low frequencies at the bottom (paper Figures 1 and 3)."""
    n = len(mels)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3 * cols, 1.6 * rows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            ax.imshow(mels[i], origin="lower", aspect="auto", cmap="magma", vmin=np.log10(LOG_FLOOR), vmax=1.0)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=80))
    plt.close(fig)


def save_mel_image(mel: np.ndarray, path: str | Path) -> None:
    """One log10 mel (64, T) as a small PNG for the listening page."""
    img = np.repeat(mel[::-1], 2, axis=0)                                              # (128, T), low f at the bottom
    atomic_write(path, lambda tmp: plt.imsave(tmp, img, cmap="magma", vmin=np.log10(LOG_FLOOR), vmax=1.0, format="png"))


PAGE_TEMPLATE = """<!doctype html>
<html><head><meta charset="utf-8"><title>pjloop samples</title>
<style>body{{font-family:sans-serif;margin:2em}} .loop{{display:inline-block;margin:.6em;padding:.6em;border:1px solid #ccc}}
img{{display:block;width:400px;height:128px}} audio{{width:400px;display:block}}</style></head>
<body><h1>pjloop: generated loops</h1>
<p>{info}</p>
<p id="status">loading players...</p>
{items}
<script>
// Report, for a person and for the page test, whether every player has loaded its audio.
const players = [...document.querySelectorAll('audio')];
const durations = {{}};
function report() {{
  const done = Object.keys(durations).length;
  const s = document.getElementById('status');
  s.textContent = done + '/' + players.length + ' players loaded';
  s.dataset.durations = JSON.stringify(durations);
}}
players.forEach(a => {{
  const mark = () => {{ durations[a.getAttribute('src')] = a.duration; report(); }};
  if (a.readyState >= 1) mark(); else a.addEventListener('loadedmetadata', mark);
  a.addEventListener('error', () => {{ durations[a.getAttribute('src')] = -1; report(); }});
}});
report();
</script></body></html>
"""


def write_listening_page(out_dir: str | Path, names: list[str], info: str, repeat: int = PAGE_REPEAT,
                         real_names: list[str] = ()) -> Path:
    """index.html next to the files: per loop its mel image, the loop and its x`repeat` preview; real loops
    (vocoded the same way) under a heading of their own."""
    items = []
    for k, name in enumerate([*names, *real_names]):
        if k == len(names) and real_names:
            items.append("<h2>real loops of the data set, through the same vocoder</h2>")
        items.append(
            f'<div class="loop"><b>{html.escape(name)}</b>'
            f'<img src="mel_{name}.png" alt="mel of {html.escape(name)}">'
            f'loop (2 s)<audio controls preload="metadata" src="loop_{name}.wav"></audio>'
            f'x{repeat}<audio controls preload="metadata" src="loop_{name}_x{repeat}.wav"></audio></div>')
    page = PAGE_TEMPLATE.format(info=html.escape(info), items="\n".join(items))
    path = Path(out_dir) / "index.html"
    atomic_write(path, lambda tmp: Path(tmp).write_text(page))
    return path


def write_genre_page(out: Path, sections: list[tuple[str, list[str]]], info: str, repeat: int = PAGE_REPEAT) -> Path:
    """index.html with one section per genre: its grid and its players (files in out/<genre>/)."""
    items = []
    for genre, names in sections:
        g = html.escape(genre)
        items.append(f'<h2>{g}</h2><img src="{g}/grid.png" alt="grid of {g}" style="width:800px;height:auto">')
        items += [f'<div class="loop"><b>{g} {html.escape(n)}</b><audio controls preload="metadata" '
                  f'src="{g}/loop_{n}.wav"></audio>x{repeat}<audio controls preload="metadata" '
                  f'src="{g}/loop_{n}_x{repeat}.wav"></audio></div>' for n in names]
    path = out / "index.html"
    page = PAGE_TEMPLATE.format(info=html.escape(info), items="\n".join(items))
    atomic_write(path, lambda tmp: Path(tmp).write_text(page))
    return path
