"""No command deletes or replaces what a user made: a folder of the user's files, named as an output, survives.

Issue 24: `report --out mine` deleted `mine/` whole, `--out ''` the working folder; `export --out DIR` replaced
another run's checkpoint.pt and config.yaml. Each command that writes into a folder (or a file beside
others) is run on a folder that already holds the user's files; whether the command then writes there
or refuses, the user's files are all still there, byte for byte.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from hpsearch.cli import main

USERS = {"a.txt": b"x", "sub/b.txt": b"y", "checkpoint.pt": b"not hpsearch's", "config.yaml": b"mine: 1\n",
         "index.html": b"<p>my page</p>", "samples.png": b"mine"}

COMMANDS: dict[str, Callable[[Path, Path, Path], list[str]]] = {
    "report": lambda study, mine, ckpt: ["report", str(study), "--out", str(mine), "--no-png", "--top", "1"],
    "export": lambda study, mine, ckpt: ["export", str(study), "--out", str(mine)],
    "export-last": lambda study, mine, ckpt: ["export", str(study), "--out", str(mine), "--last"],
    "sample": lambda study, mine, ckpt: ["sample", str(ckpt), "--out", str(mine / "grid.png"), "--per-class", "1"],
    "visualize": lambda study, mine, ckpt: ["visualize", "attention", str(ckpt), "--out", str(mine / "att.png")],
    "train": lambda study, mine, ckpt: ["train", "configs/digits.yaml", "--out", str(mine), "--steps", "1"],
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_folder_of_the_users_files_survives(command: str, tiny_study: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    mine = tmp_path / "mine"
    for name, content in USERS.items():
        (mine / name).parent.mkdir(parents=True, exist_ok=True)
        (mine / name).write_bytes(content)
    exported = tmp_path / "exported"
    assert main(["export", str(tiny_study), "--out", str(exported)]) == 0
    argv = COMMANDS[command](tiny_study, mine, exported / "checkpoint.pt")
    try:
        main(argv)
    except SystemExit:  # argparse refused
        pass
    for name, content in USERS.items():
        assert (mine / name).read_bytes() == content, (command, name, capsys.readouterr().err)
