"""Fetch raw dataset files with checksum verification, or find them where the user put them."""

from __future__ import annotations

import hashlib
import logging
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from hpsearch.errors import DataError
from hpsearch.io import atomic_path

_logger = logging.getLogger(__name__)
_TIMEOUT_S = 30


@dataclass(frozen=True)
class RemoteFile:
    """One raw file of a dataset: its name, official MD5 and where to get it (first URL wins)."""

    name: str
    md5: str
    urls: tuple[str, ...]


def md5sum(path: Path) -> str:
    """Hex MD5 of a file, read in chunks (MD5 identifies the official files, it is no security)."""
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def download(url: str, dest: Path, md5: str) -> None:
    """Download `url` to `dest`, verifying the MD5; on any failure nothing is left at `dest`.

    Raises:
        DataError: the download failed or the checksum did not match.
    """
    _logger.info("downloading %s", url)
    with atomic_path(dest) as tmp:
        try:
            with urllib.request.urlopen(url, timeout=_TIMEOUT_S) as response, tmp.open("wb") as fh:
                total = int(response.headers.get("Content-Length") or 0) or None
                with tqdm(total=total, unit="B", unit_scale=True, desc=dest.name, leave=False) as bar:
                    for chunk in iter(lambda: response.read(1 << 20), b""):
                        fh.write(chunk)
                        bar.update(len(chunk))
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise DataError(f"could not download {url}: {exc}") from exc
        got = md5sum(tmp)
        if got != md5:
            raise DataError(f"checksum mismatch for {url}: expected md5 {md5}, got {got}")


def ensure_files(dataset: str, files: list[RemoteFile], folder: Path, allow_download: bool) -> list[Path]:
    """Return local paths of `files` in `folder`, downloading the missing ones when allowed.

    Files the user placed are used as they are (the parser checks their format); a file
    whose MD5 differs from the official one only gets a warning, so that a user can
    feed a subset or a re-packed copy on purpose.

    Raises:
        DataError: a file is missing and could not be downloaded; the message names every
            required file and the folder to put them in.
    """
    paths = []
    for remote in files:
        path = folder / remote.name
        if not path.is_file():
            _fetch(dataset, remote, path, files, folder, allow_download)
        elif md5sum(path) != remote.md5:
            _logger.warning("%s: %s differs from the official file (md5); using it as placed", dataset, path)
        paths.append(path)
    return paths


def _fetch(dataset: str, remote: RemoteFile, path: Path, files: list[RemoteFile], folder: Path,
           allow_download: bool) -> None:
    how = f"place {', '.join(f.name for f in files)} in {folder} (from {remote.urls[0].rsplit('/', 1)[0]}/)"
    if not allow_download:
        raise DataError(f"{dataset}: {path.name} not found in {folder} and downloads are off; {how}")
    errors = []
    for url in remote.urls:
        try:
            download(url, path, remote.md5)
            return
        except DataError as exc:
            errors.append(str(exc))
    raise DataError(f"{dataset}: {path.name} not found in {folder} and {errors[-1]}; {how}")
