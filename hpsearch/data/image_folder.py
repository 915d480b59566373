"""A folder with one sub-folder of PNG/JPEG images per class (e.g. game sprites)."""

from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from hpsearch.errors import DataError, reason

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def list_image_folder(root: Path) -> tuple[list[str], list[tuple[Path, int]]]:
    """Class names (sorted sub-folder names) and (file, class index) pairs.

    Raises:
        DataError: the folder is missing, has no class sub-folders, or a class has no images.
    """
    if not root.is_dir():
        raise DataError(f"image_folder: {root} is not a folder (expected one sub-folder of PNG/JPEG files per class)")
    try:
        classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
        listing = {name: sorted(p for p in (root / name).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
                   for name in classes}
    except OSError as exc:
        raise DataError(f"image_folder: {exc.filename or root} cannot be listed ({exc.strerror or exc})") from exc
    if not classes:
        raise DataError(f"image_folder: {root} has no class sub-folders (expected {root}/<class>/<image>.png)")
    items: list[tuple[Path, int]] = []
    for index, name in enumerate(classes):
        files = listing[name]
        odd = next((f for f in files if not f.is_file()), None)  # a FIFO would block the reader forever
        if odd is not None:
            raise DataError(f"image_folder: {_shown(odd)} is not a regular file (a folder, pipe or device named like "
                            "an image); only PNG/JPEG files belong in a class folder")
        if not files:
            raise DataError(f"image_folder: class folder {root / name} has no {'/'.join(IMAGE_SUFFIXES)} files")
        items.extend((f, index) for f in files)
    return classes, items


def fingerprint(items: list[tuple[Path, int]]) -> str:
    """Short hash of file names, sizes and mtimes: the cache is rebuilt when the folder changes."""
    digest = hashlib.sha256()
    for path, label in items:
        stat = path.stat()
        digest.update(os.fsencode(path) + f"|{label}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def read_image_folder(items: list[tuple[Path, int]], size: int, channels: int) -> tuple[np.ndarray, np.ndarray]:
    """Decode, convert to grey or RGB and resize every image to size×size.

    Returns:
        images (N, size, size[, 3]) uint8 and labels (N,) int64.
    """
    images = []
    for path, _ in items:
        try:
            with warnings.catch_warnings():  # Pillow warns (two lines on stderr) before it refuses: refuse at once
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                with Image.open(path) as raw:
                    img = _to_8bit(raw, channels).resize((size, size), Image.Resampling.BILINEAR)
                    images.append(np.asarray(img, dtype=np.uint8))
        except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError,
                Image.DecompressionBombWarning) as exc:
            raise DataError(f"image_folder: {_shown(path)} is not a readable PNG/JPEG image ({reason(exc)})") from exc
    return np.stack(images), np.array([label for _, label in items], dtype=np.int64)


def _shown(path: Path) -> str:
    """The path for a message, printable whatever bytes its name holds."""
    return os.fsdecode(os.fsencode(path)).encode("utf-8", "backslashreplace").decode()


def _to_8bit(img: Image.Image, channels: int) -> Image.Image:
    """Grey ("L") or RGB 8-bit; a 16-bit grey PNG is scaled down (÷257) instead of clipped.

    Pillow's own `convert("L")` clips a 16-bit PNG's values at 255, which turns nearly every
    pixel white; the images would train a GAN on blank squares without any error. (Pillow
    reads 16-bit RGB PNGs as 8-bit RGB itself.)
    """
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        values = np.asarray(img, dtype=np.float64)
        grey = Image.fromarray(np.clip(np.round(values / 257.0), 0, 255).astype(np.uint8), mode="L")
        return grey if channels == 1 else grey.convert("RGB")
    return img.convert("L" if channels == 1 else "RGB")
