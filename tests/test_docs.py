"""The README and docs/ cannot drift from the code: fields, commands and links are checked here.

- every field of every run-config section and of a study file is in its reference table, and every
  name in those tables is a field;
- every `hpsearch …` command shown in a shell block parses with the real argument parser;
- every relative link points to a file, and a link to a heading to a heading that exists.
"""

from __future__ import annotations

import dataclasses
import re
import shlex
from pathlib import Path

import pytest

from hpsearch.cli import build_parser
from hpsearch.config import RunConfig
from hpsearch.search.study_file import StudyConfig

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
README_MAX_LINES = 250


def _table_names(page: Path, heading: str) -> dict[str, set[str]]:
    """The backticked names of the first column after the key column, per key, in the table under `heading`."""
    text = page.read_text()
    start = text.index(heading)
    names: dict[str, set[str]] = {}
    for line in text[start:].splitlines()[1:]:
        if line.startswith("#"):
            break
        cells = [c.strip() for c in line.strip().strip("|").split("|")] if line.startswith("|") else []
        if len(cells) >= 2 and not set(cells[0]) <= {"-"}:
            names.setdefault(cells[0], set()).update(re.findall(r"`([a-z_0-9]+)`", cells[1]))
    return names


def test_the_run_config_reference_names_every_field_and_only_fields() -> None:
    table = _table_names(ROOT / "docs" / "configuration.md", "| section | field |")
    for section in dataclasses.fields(RunConfig):
        documented = table.get(section.name, set())
        fields = {f.name for f in dataclasses.fields(section.default_factory())}  # type: ignore[misc]
        assert documented - fields == set(), f"{section.name}: documented but not fields"
        assert fields - documented == set(), f"{section.name}: fields missing from docs/configuration.md"
    assert set(table) == {s.name for s in dataclasses.fields(RunConfig)}, sorted(table)


def test_the_study_file_reference_names_every_key_and_only_keys() -> None:
    documented = {key.strip("`") for key in _table_names(ROOT / "docs" / "search.md", "| key | ")}
    keys = {f.name for f in dataclasses.fields(StudyConfig)}
    assert documented == keys, (sorted(documented - keys), sorted(keys - documented))


def _commands() -> list[tuple[str, str]]:
    """(page, command line) for every `hpsearch …` in a fenced block, continuation lines joined."""
    found = []
    for page in PAGES:
        blocks = re.findall(r"```(?:bash|sh)?\n(.*?)```", page.read_text(), re.S)
        for block in blocks:
            for line in block.replace("\\\n", " ").splitlines():
                for part in re.split(r"&&|;", line.strip().removeprefix("$ ")):
                    if part.strip().startswith("hpsearch "):
                        found.append((page.name, part.strip()))
    return found


COMMANDS = _commands()


def test_the_docs_show_commands() -> None:
    assert len(COMMANDS) >= 20, COMMANDS  # the extraction works: the pages show every command


@pytest.mark.parametrize(("page", "line"), COMMANDS, ids=[f"{p}: {c[:60]}" for p, c in COMMANDS])
def test_every_documented_command_parses(page: str, line: str) -> None:
    argv = shlex.split(line, comments=True)[1:]
    try:
        build_parser().parse_args(argv)
    except SystemExit as exc:
        pytest.fail(f"{page}: `{line}` does not parse (exit {exc.code})")


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces → hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_every_link_points_to_a_file_and_heading_that_exist() -> None:
    broken = []
    for page in [*PAGES, ROOT / "benchmarks" / "README.md"]:
        for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
            if re.match(r"[a-z]+://", target):
                continue
            path, _, anchor = target.partition("#")
            file = (page.parent / path).resolve() if path else page
            if not file.exists():
                broken.append(f"{page.relative_to(ROOT)}: {target}")
            elif anchor:
                headings = re.findall(r"^#+ (.*)$", file.read_text(), re.M)
                if anchor not in {_slug(h) for h in headings}:
                    broken.append(f"{page.relative_to(ROOT)}: {target} (no such heading)")
    assert not broken, broken


def test_the_readme_is_a_newcomer_s_path_not_the_reference() -> None:
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= README_MAX_LINES, len(lines)
    assert "../shared" not in "\n".join(lines)  # the papers are cited by title, not by a path outside the repository


def test_every_file_the_docs_name_exists() -> None:
    """A study, space, config, benchmark, test or deployment file named in the text (renamed files leave names)."""
    named = set()
    for page in PAGES:
        named |= set(re.findall(r"\b((?:studies|configs|search_spaces|benchmarks|deploy|tests|hpsearch)/[\w./-]*\w"
                                r"\.(?:yaml|py|sbatch|md|csv|json|png|sql))\b", page.read_text()))
    missing = sorted(n for n in named if not (ROOT / n).exists())
    assert not missing, missing
