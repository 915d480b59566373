"""Dataset parsing from real-format files, caching, errors, and the download path."""

from __future__ import annotations

import gzip
import http.server
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch

from hpsearch.config import DataConfig
from hpsearch.data import load_dataset
from hpsearch.data.download import RemoteFile, download, ensure_files, md5sum
from hpsearch.errors import DataError
from tests.data.formats import write_cifar10, write_idx_gz, write_image_folder, write_mnist


def test_digits_is_real_bundled_data(tmp_path: Path) -> None:
    ds = load_dataset(DataConfig(name="digits", image_size=16), tmp_path)
    assert ds.images.shape == (1797, 1, 16, 16) and ds.images.dtype == torch.uint8
    assert ds.class_names == [str(i) for i in range(10)]
    assert torch.bincount(ds.labels).min() > 170  # every digit well represented
    assert int(ds.images.max()) == 255 and int(ds.images.min()) == 0
    assert (tmp_path / "cache" / "digits-16.npz").is_file()
    again = load_dataset(DataConfig(name="digits", image_size=16), tmp_path)  # from the cache
    torch.testing.assert_close(again.images, ds.images)


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_idx_files_placed_by_user_are_parsed(tmp_path: Path, name: str) -> None:
    images, labels = write_mnist(tmp_path / name)
    ds = load_dataset(DataConfig(name=name, image_size=32, download=False), tmp_path)
    assert ds.images.shape == (20, 1, 32, 32)
    torch.testing.assert_close(ds.labels, torch.from_numpy(labels.astype(np.int64)))
    native = load_dataset(DataConfig(name=name, image_size=16, download=False), tmp_path)
    assert native.images.shape == (20, 1, 16, 16) and len(ds.class_names) == 10


def test_idx_resize_keeps_content(tmp_path: Path) -> None:
    images = np.zeros((2, 16, 16), dtype=np.uint8)
    images[1] = 255
    write_idx_gz(tmp_path / "mnist" / "train-images-idx3-ubyte.gz", images)
    write_idx_gz(tmp_path / "mnist" / "train-labels-idx1-ubyte.gz", np.array([0, 1], dtype=np.uint8))
    ds = load_dataset(DataConfig(name="mnist", image_size=16, download=False), tmp_path)
    assert int(ds.images[0].max()) == 0 and int(ds.images[1].min()) == 255


def test_missing_idx_files_name_files_and_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"mnist: train-images-idx3-ubyte.gz not found in .*mnist.*place "
                                        r"train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz in"):
        load_dataset(DataConfig(name="mnist", image_size=32, download=False), tmp_path)
    assert not (tmp_path / "cache").exists()


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"not gzip at all", r"not a readable gzip idx file"),
        (gzip.compress(b"\x00\x00\x0c\x03" + b"\x00" * 20), r"bad magic number"),
        (gzip.compress(b"\x00\x00\x08\x03" + b"\x00\x00\x00\x05\x00\x00\x00\x1c\x00\x00\x00\x1c" + b"\x00" * 9),
         r"header says shape \(5, 28, 28\)"),
    ],
)
def test_corrupt_idx_files_raise(tmp_path: Path, content: bytes, match: str) -> None:
    write_mnist(tmp_path / "mnist")
    (tmp_path / "mnist" / "train-images-idx3-ubyte.gz").write_bytes(content)
    with pytest.raises(DataError, match=match):
        load_dataset(DataConfig(name="mnist", image_size=32, download=False), tmp_path)


def test_mismatched_idx_counts_raise(tmp_path: Path) -> None:
    write_mnist(tmp_path / "mnist", n=20)
    write_idx_gz(tmp_path / "mnist" / "train-labels-idx1-ubyte.gz", np.zeros(7, dtype=np.uint8))
    with pytest.raises(DataError, match=r"do not match"):
        load_dataset(DataConfig(name="mnist", image_size=32, download=False), tmp_path)


def test_cifar10_tar_gz_is_parsed(tmp_path: Path) -> None:
    images, labels = write_cifar10(tmp_path / "cifar10" / "cifar-10-python.tar.gz")
    ds = load_dataset(DataConfig(name="cifar10", image_size=32, download=False), tmp_path)
    assert ds.images.shape == (20, 3, 32, 32) and ds.class_names[0] == "airplane"
    torch.testing.assert_close(ds.images, torch.from_numpy(images.transpose(0, 3, 1, 2).copy()))
    torch.testing.assert_close(ds.labels, torch.from_numpy(labels.astype(np.int64)))


def test_cifar10_corrupt_or_hostile_archive(tmp_path: Path) -> None:
    path = tmp_path / "cifar10" / "cifar-10-python.tar.gz"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"garbage")
    with pytest.raises(DataError, match=r"not a readable tar.gz"):
        load_dataset(DataConfig(name="cifar10", image_size=32, download=False), tmp_path)
    import io
    import pickle
    import tarfile

    with tarfile.open(path, "w:gz") as tar:  # a pickle that would run os.system
        blob = pickle.dumps({b"data": __import__("os").getcwd}, protocol=2)
        members = [f"cifar-10-batches-py/data_batch_{i}" for i in range(1, 6)] + ["cifar-10-batches-py/batches.meta"]
        for member in members:
            info = tarfile.TarInfo(member)
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    with pytest.raises(DataError, match=r"not a CIFAR python batch \(global posix.getcwd is not allowed"):
        load_dataset(DataConfig(name="cifar10", image_size=32, download=False), tmp_path)


def test_image_folder(tmp_path: Path) -> None:
    write_image_folder(tmp_path / "sprites", {"knight": 3, "archer": 2})
    ds = load_dataset(DataConfig(name="image_folder", image_size=16, root=str(tmp_path / "sprites")), tmp_path)
    assert ds.class_names == ["archer", "knight"]  # sorted folder names
    assert ds.images.shape == (5, 3, 16, 16) and ds.labels.tolist() == [0, 0, 1, 1, 1]
    grey = load_dataset(DataConfig(name="image_folder", image_size=16, channels=1, root=str(tmp_path / "sprites")),
                        tmp_path)
    assert grey.images.shape == (5, 1, 16, 16)


def test_image_folder_errors(tmp_path: Path) -> None:
    cfg = DataConfig(name="image_folder", image_size=16, root=str(tmp_path / "none"))
    with pytest.raises(DataError, match=r"is not a folder \(expected one sub-folder of PNG/JPEG files per class\)"):
        load_dataset(cfg, tmp_path)
    (tmp_path / "flat").mkdir()
    with pytest.raises(DataError, match=r"has no class sub-folders"):
        load_dataset(DataConfig(name="image_folder", image_size=16, root=str(tmp_path / "flat")), tmp_path)
    write_image_folder(tmp_path / "bad", {"a": 2})
    (tmp_path / "bad" / "a" / "broken.png").write_bytes(b"\x89PNG nope")
    with pytest.raises(DataError, match=r"broken.png is not a readable PNG/JPEG image"):
        load_dataset(DataConfig(name="image_folder", image_size=16, root=str(tmp_path / "bad")), tmp_path)


@pytest.fixture
def http_root(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A static file server on 127.0.0.1 serving a temporary folder."""
    root = tmp_path / "served"
    root.mkdir()
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a, **k: None  # type: ignore[method-assign]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", root
    server.shutdown()


def test_download_verifies_checksum_and_leaves_nothing_on_mismatch(http_root: tuple[str, Path], tmp_path: Path) -> None:
    url, root = http_root
    write_mnist(root)
    good = md5sum(root / "train-images-idx3-ubyte.gz")
    dest = tmp_path / "dl" / "train-images-idx3-ubyte.gz"
    download(f"{url}/train-images-idx3-ubyte.gz", dest, good)
    assert md5sum(dest) == good
    bad_dest = tmp_path / "dl" / "other.gz"
    with pytest.raises(DataError, match=r"checksum mismatch .* expected md5 0{32}"):
        download(f"{url}/train-images-idx3-ubyte.gz", bad_dest, "0" * 32)
    assert sorted(p.name for p in bad_dest.parent.iterdir()) == ["train-images-idx3-ubyte.gz"]


def test_ensure_files_downloads_then_reuses(http_root: tuple[str, Path], tmp_path: Path) -> None:
    url, root = http_root
    write_mnist(root)
    files = [RemoteFile(n, md5sum(root / n), (f"{url}/missing/{n}", f"{url}/{n}"))  # first mirror 404s
             for n in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz")]
    paths = ensure_files("mnist", files, tmp_path / "mnist", allow_download=True)
    assert [p.is_file() for p in paths] == [True, True]
    broken = [RemoteFile("x.gz", "0" * 32, (f"{url}/nothing-here.gz",))]
    with pytest.raises(DataError, match=r"mnist: x.gz not found in .* could not download .*404.*; place x.gz in"):
        ensure_files("mnist", broken, tmp_path / "mnist", allow_download=True)
