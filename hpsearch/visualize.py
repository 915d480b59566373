"""Looking inside generators: self-attention maps (Figure 12) and style mixing (Figure 16) of the second paper."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from PIL import Image, ImageDraw
from torch import nn

from hpsearch.errors import ConfigError
from hpsearch.generation import seeded_eval
from hpsearch.images import to_uint8
from hpsearch.io import atomic_write
from hpsearch.models.generators import StyleGAN2Generator

# Query colours (as in Figure 12: a dot on the image, and its map tinted the same).
COLORS = [(230, 40, 40), (40, 110, 230), (40, 180, 60), (240, 170, 20), (170, 60, 200), (20, 190, 190)]
# Default query positions, as fractions of the attention map's height and width.
DEFAULT_QUERIES = [(0.3, 0.3), (0.3, 0.7), (0.7, 0.3), (0.7, 0.7)]
_CELL = 96  # pixels per tile in the output figures


@torch.no_grad()
def attention_maps(gen: nn.Module, labels: torch.Tensor, z_dim: int, queries: list[tuple[float, float]],
                   seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Generated images and, for each query position, its attention weights over all positions.

    Returns:
        images (B, C, H, W) uint8 and maps (B, Q, r, r) where r is the attention resolution;
        each map sums to 1 (a row of the softmax).

    Raises:
        ConfigError: the generator has no self-attention.
    """
    attention = getattr(gen, "attention", None)
    if attention is None:
        raise ConfigError("the checkpoint's generator has no self-attention (model.g_attention is 'none'); "
                          "train a sagan generator or set model.g_attention")
    captured: list[torch.Tensor] = []
    handle = attention.register_forward_hook(lambda _m, inputs, _out: captured.append(inputs[0]))
    try:
        with seeded_eval(gen, seed, labels.device):
            z = torch.randn(labels.shape[0], z_dim, device=labels.device)
            images = to_uint8(gen(z, labels))
    finally:
        handle.remove()
    features = captured[0]  # (B, C, r, r)
    r = features.shape[-1]
    weights = attention.attention(features)  # (B, N, N)
    rows = [min(r - 1, int(qy * r)) * r + min(r - 1, int(qx * r)) for qy, qx in queries]
    return images, weights[:, rows].view(labels.shape[0], len(queries), r, r)


def save_attention_figure(images: torch.Tensor, maps: torch.Tensor, queries: list[tuple[float, float]],
                          path: Path) -> None:
    """One row per image: the image with coloured query dots, then each query's map (brighter = more)."""
    b, q = maps.shape[:2]
    sheet = Image.new("RGB", ((q + 1) * _CELL, b * _CELL), "white")
    for i in range(b):
        tile = _tile(images[i])
        draw = ImageDraw.Draw(tile)
        for k, (qy, qx) in enumerate(queries):
            cx, cy = qx * _CELL, qy * _CELL
            draw.ellipse([cx - 4, cy - 4, cx + 4, cy + 4], fill=COLORS[k % len(COLORS)], outline="white")
        sheet.paste(tile, (0, i * _CELL))
        for k in range(q):
            m = maps[i, k]
            m = (m - m.min()) / (m.max() - m.min() + 1e-12)  # normalized per map, as in Figure 12
            color = torch.tensor(COLORS[k % len(COLORS)], dtype=torch.float32)
            rgb = (m[..., None].cpu() * color).to(torch.uint8).numpy()  # (r, r, 3)
            heat = Image.fromarray(rgb).resize((_CELL, _CELL), Image.Resampling.NEAREST)
            sheet.paste(heat, ((k + 1) * _CELL, i * _CELL))
    _save(sheet, path)


@torch.no_grad()
def style_mixing(gen: nn.Module, label: int, rows: int, cols: int, cutoff: int | None, seed: int = 0) -> torch.Tensor:
    """Figure 16's grid as uint8 images ((rows+1)·(cols+1), C, H, W), row-major.

    Cell (r, c) takes the first `cutoff` styles (coarse: the low resolutions) from row source
    r and the rest (fine) from column source c; the first row and column show the sources
    themselves, the top-left cell is blank. All images share one class and one noise draw.

    Raises:
        ConfigError: not a stylegan2 generator, or a cutoff outside 1..num_styles-1.
    """
    if not isinstance(gen, StyleGAN2Generator):
        raise ConfigError("style mixing needs a stylegan2 generator; the checkpoint's is "
                          f"{type(gen).__name__}")
    cutoff = gen.num_styles // 2 if cutoff is None else cutoff
    if not 1 <= cutoff < gen.num_styles:
        raise ConfigError(f"style-mixing cutoff: must be in 1..{gen.num_styles - 1} (the generator has "
                          f"{gen.num_styles} styles); got {cutoff}")
    device = gen.const.device
    g = torch.Generator(device=device).manual_seed(seed)
    y_rows = torch.full((rows,), label, device=device)
    y_cols = torch.full((cols,), label, device=device)
    w_rows = gen.map(torch.randn(rows, gen.z_dim, device=device, generator=g), y_rows)  # (R, w_dim)
    w_cols = gen.map(torch.randn(cols, gen.z_dim, device=device, generator=g), y_cols)  # (C, w_dim)
    s = gen.num_styles
    ws = [torch.zeros_like(w_cols[0]).expand(s, -1)]  # blank corner (replaced below)
    ws += [w_cols[c].expand(s, -1) for c in range(cols)]
    for r in range(rows):
        ws.append(w_rows[r].expand(s, -1))
        ws += [torch.cat([w_rows[r].expand(cutoff, -1), w_cols[c].expand(s - cutoff, -1)]) for c in range(cols)]
    with seeded_eval(gen, seed, device):
        images = to_uint8(gen.synthesize(torch.stack(ws)))
    images[0] = 255  # the blank corner
    return images


def save_style_mixing_figure(images: torch.Tensor, rows: int, cols: int, path: Path) -> None:
    """Lay out `style_mixing`'s images with a gap after the source row and column."""
    gap = 6
    sheet = Image.new("RGB", ((cols + 1) * _CELL + gap, (rows + 1) * _CELL + gap), "white")
    for i, image in enumerate(images):
        r, c = divmod(i, cols + 1)
        sheet.paste(_tile(image), (c * _CELL + (gap if c else 0), r * _CELL + (gap if r else 0)))
    _save(sheet, path)


@dataclass
class FigureOptions:
    """What a figure shows.

    Attributes:
        classes: attention: one generated image per class.
        label, rows, cols, cutoff: style mixing: the class, the row and column sources, and
            how many styles come from the row (None: half).
        seed: the noise seed.
    """

    classes: list[int] = field(default_factory=lambda: [0, 1])
    label: int = 0
    rows: int = 4
    cols: int = 4
    cutoff: int | None = None
    seed: int = 0


def _attention_figure(gen: nn.Module, z_dim: int, options: FigureOptions, path: Path) -> None:
    labels = torch.tensor(options.classes, device=next(gen.parameters()).device)
    images, maps = attention_maps(gen, labels, z_dim, DEFAULT_QUERIES, options.seed)
    save_attention_figure(images, maps, DEFAULT_QUERIES, path)


def _style_mixing_figure(gen: nn.Module, _z_dim: int, options: FigureOptions, path: Path) -> None:
    images = style_mixing(gen, options.label, options.rows, options.cols, options.cutoff, options.seed)
    save_style_mixing_figure(images, options.rows, options.cols, path)


@dataclass(frozen=True)
class Figure:
    """A figure that looks inside a generator.

    Attributes:
        draw: (generator, z_dim, options, path) → the figure written to path.
        applies: whether a model config's generator has what the figure shows.
    """

    draw: Callable[[nn.Module, int, FigureOptions, Path], None]
    applies: Callable[[Mapping[str, Any]], bool]


# The figures, by name (`hpsearch visualize KIND`, the report's look inside the best generators).
FIGURES: dict[str, Figure] = {
    "attention": Figure(_attention_figure,
                        lambda m: m.get("generator") != "stylegan2" and m.get("g_attention", "none") != "none"),
    "style-mixing": Figure(_style_mixing_figure, lambda m: m.get("generator") == "stylegan2"),
}


def draw_figure(kind: str, gen: nn.Module, z_dim: int, options: FigureOptions, path: Path) -> None:
    """Draw the figure `kind` of a generator into `path` (.png).

    Raises:
        ConfigError: an unknown kind (naming the choices), or one the generator does not have.
    """
    if kind not in FIGURES:
        raise ConfigError(f"figure {kind!r}: unknown; choose from {sorted(FIGURES)}")
    FIGURES[kind].draw(gen, z_dim, options, path)


def figures_for(model: Mapping[str, Any]) -> list[str]:
    """The figures a generator of this model config has (style mixing for stylegan2, attention where it attends)."""
    return [name for name, figure in FIGURES.items() if figure.applies(model)]


def _tile(image: torch.Tensor) -> Image.Image:
    """One uint8 (C, H, W) image as an RGB tile of _CELL pixels (nearest: pixels stay visible)."""
    array = image.permute(1, 2, 0).cpu().numpy()
    pil = Image.fromarray(array[..., 0] if array.shape[2] == 1 else array).convert("RGB")
    return pil.resize((_CELL, _CELL), Image.Resampling.NEAREST)


def _save(sheet: Image.Image, path: Path) -> None:
    if path.suffix.lower() != ".png":
        raise ConfigError(f"{path}: a figure is written as .png")
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda fh: sheet.save(fh, format="PNG"))
