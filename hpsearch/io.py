"""Files a user hands in and files hpsearch writes: read defensively, checked before use, written atomically."""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import yaml

from hpsearch.errors import ConfigError

MAX_TEXT_BYTES = 8 << 20  # configs, studies and spaces are a few KB; anything this big is not one
MAX_PATH_CHARS = 4096  # Linux's PATH_MAX


def check_text(text: str, what: str, allowed: str, secret: bool = False) -> str:
    """A path, name or URL a user gave: not empty, no control characters, not absurdly long.

    An empty string is never a path (an unset shell variable, `--out ''`, would otherwise mean
    the working folder); a newline or escape would split log lines or hide in a folder's name.

    Args:
        what: the flag, variable or key, for the message.
        allowed: what it should be, e.g. "a folder".
        secret: the value may hold a password: the message does not repeat it.

    Raises:
        ConfigError: naming `what`, the problem and what is allowed.
    """
    shown = "" if secret else f"; got {text[:200]!r}"
    if not text.strip():
        raise ConfigError(f"{what}: empty (an unset shell variable?); give {allowed}")
    bad = next((c for c in text if ord(c) < 32 or ord(c) == 127), None)
    if bad is not None:
        raise ConfigError(f"{what}: contains the control character {bad!r}; give {allowed} without control "
                          f"characters{shown}")
    if len(text) > MAX_PATH_CHARS:
        raise ConfigError(f"{what}: {len(text)} characters, more than {MAX_PATH_CHARS}; give {allowed}")
    return text


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; move it into place only if the body succeeds.

    On failure nothing is left: not the temporary file, nor the folders made for `path`. An
    OSError that names no file (a write that hit a full disk) is raised naming `path`.
    """
    made = _missing_ancestors(path.parent)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        _remove_empty(made)
        raise _naming(exc, path) from exc
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; shared caches should follow the umask
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except OSError as exc:
        raise _naming(exc, path) from exc
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
            _remove_empty(made)


def _missing_ancestors(folder: Path) -> list[Path]:
    """`folder` and its ancestors that do not exist yet, deepest first."""
    missing = []
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    return missing


def existing_ancestor(path: Path) -> Path:
    """`path` itself when it exists, else its nearest ancestor that does (where a new file or folder would go)."""
    missing = _missing_ancestors(path)
    return missing[-1].parent if missing else path


def _remove_empty(folders: list[Path]) -> None:
    for folder in folders:  # deepest first; a folder something else wrote into meanwhile stays
        try:
            folder.rmdir()
        except OSError:
            return


@contextmanager
def naming_errors(path: Path) -> Iterator[None]:
    """Re-raise an OSError that names no file (a write that hit a full disk) as one naming `path`."""
    try:
        yield
    except OSError as exc:
        raise _naming(exc, path) from exc


def _naming(exc: OSError, path: Path) -> OSError:
    """`exc` with `path` as its file when it names none (so the one error line can say which file)."""
    if exc.filename is not None:
        return exc
    named = OSError(exc.errno, exc.strerror or str(exc), str(path))
    named.__cause__ = exc
    return named


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: Path, write: Callable[[IO[Any]], object], mode: str = "wb") -> None:
    """Call `write(fileobj)` on a temporary file, flush it to disk and rename it to `path`.

    The fsync before the rename means that after a crash or power loss `path` holds either
    the old or the new content, never a truncated file.
    """
    with atomic_path(path) as tmp:
        with open(tmp, mode) as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())


def atomic_write_text(path: Path, text: str) -> None:
    """Write `text` to `path` atomically."""
    atomic_write(path, lambda fh: fh.write(text), mode="w")


def read_text(path: Path, what: str, limit: int = MAX_TEXT_BYTES) -> str:
    """The UTF-8 text of a small file the user named (config, study, space).

    Raises:
        ConfigError: missing, not a regular file, unreadable, larger than `limit`, or not
            UTF-8 text; the message names the file and what it should be.
    """
    if not path.exists():
        raise ConfigError(f"{path}: {what} file not found")
    if not path.is_file():
        raise ConfigError(f"{path}: {what} file is not a regular file (a YAML file is expected)")
    try:
        with path.open("rb") as fh:
            data = fh.read(limit + 1)
    except OSError as exc:
        raise ConfigError(f"{path}: {what} file cannot be read ({exc.strerror or type(exc).__name__})") from exc
    if len(data) > limit:
        raise ConfigError(f"{path}: {what} file is larger than {limit >> 20} MiB; a YAML file of a few KB is expected")
    if b"\0" in data:
        raise ConfigError(f"{path}: {what} file is binary; a YAML text file is expected")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: {what} file is not UTF-8 text (byte {exc.start}); a YAML text file is "
                          "expected") from exc


def check_writable(path: Path, what: str, *, is_dir: bool) -> None:
    """Fail now, before anything is created, if `path` could not be written later.

    A folder (`is_dir`) must be a folder or not exist yet; a file must be a regular file or
    not exist. Either way the nearest existing ancestor must be a folder in which this
    process can create a file; that is probed with a temporary file, removed at once, so
    nothing is left behind (`os.access` alone is fooled by root and by read-only mounts).

    Raises:
        ConfigError: naming `what` and the path.
    """
    long = next((part for part in path.parts if len(os.fsencode(part)) > 255), None)
    if long is not None:
        raise ConfigError(f"{what} {path}: the name {long[:40]!r}… is longer than 255 bytes, the most a file "
                          "system allows; choose a shorter name")
    broken = next((p for p in (path, *path.parents) if p.is_symlink() and not p.exists()), None)
    if broken is not None:
        raise ConfigError(f"{what} {path}: {broken} is a symbolic link to nothing (dangling, or a loop); "
                          "name a real folder or file")
    if path.exists():
        if is_dir and not path.is_dir():
            raise ConfigError(f"{what} {path}: exists and is not a folder; name a folder (new or existing)")
        if not is_dir and not path.is_file():
            raise ConfigError(f"{what} {path}: exists and is not a regular file; name a file to write")
    probe_dir = path if is_dir and path.is_dir() else path.parent
    ancestor = existing_ancestor(probe_dir)
    if not ancestor.is_dir():
        raise ConfigError(f"{what} {path}: cannot be created: {ancestor} is a file, not a folder")
    try:
        fd, probe = tempfile.mkstemp(prefix=".hpsearch-write-test-", dir=ancestor)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        reason = "read-only file system" if exc.errno == errno.EROFS else (exc.strerror or type(exc).__name__)
        raise ConfigError(f"{what} {path}: cannot be written ({reason} in {ancestor}); choose a place this user can "
                    "write") from exc


OWNER_FILE = ".hpsearch-owner.json"  # in a folder hpsearch made as a whole (a report): what made it, for what


def mark_owned(folder: Path, kind: str, owner: str) -> None:
    """Record in `folder` that hpsearch made it, as a `kind` of `owner` (e.g. the report of study S)."""
    atomic_write_text(folder / OWNER_FILE, json.dumps({"kind": kind, "owner": owner}) + "\n")


def owned_by(folder: Path) -> tuple[str, str] | None:
    """(kind, owner) of a folder `mark_owned` marked; None for any other folder."""
    mark = folder / OWNER_FILE
    if not mark.is_file() or mark.is_symlink() or mark.stat().st_size > 4096:  # a FIFO would block the read
        return None
    try:
        raw = json.loads(mark.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not (isinstance(raw, dict) and isinstance(raw.get("kind"), str) and isinstance(raw.get("owner"), str)):
        return None
    return raw["kind"], raw["owner"]


def check_replaceable(path: Path, what: str, kind: str, owner: str, names: frozenset[str],
                      legacy: Callable[[Path], bool] = lambda _: False) -> None:
    """Fail unless `path` may be replaced as a whole by a new `kind` of `owner`.

    A command may replace only what it made itself: a folder that does not exist yet, an empty
    one, or one marked (`mark_owned`) as the same kind of the same owner (or that `legacy`
    recognises as such, for folders written before the mark existed) that holds nothing but
    `names` (what such a folder holds: a file the user added to it is theirs). Never the working
    folder or a folder that contains it, never a symbolic link, never a folder of the user's files.

    Raises:
        ConfigError: naming `what`, the path and what is allowed.
    """
    if path.is_symlink():
        raise ConfigError(f"{what} {path}: is a symbolic link; name the folder itself")
    if not path.exists():
        return
    resolved, cwd = path.resolve(), Path.cwd().resolve()
    if resolved == cwd or resolved in cwd.parents:
        raise ConfigError(f"{what} {path}: is the working folder or contains it, which a new {kind} would replace; "
                          f"name a folder of its own, e.g. {kind}s/{owner}")
    if not path.is_dir():
        return  # check_writable names it
    try:
        held = {p.name for p in path.iterdir()}
    except OSError as exc:
        raise ConfigError(f"{what} {path}: cannot be listed ({exc.strerror or type(exc).__name__})") from exc
    added, mark = sorted(held - names - {OWNER_FILE}), owned_by(path)
    if not held or (not added and (mark == (kind, owner) or legacy(path))):
        return
    found = (f"an hpsearch {mark[0]} of {mark[1]!r}" if mark and mark != (kind, owner) else
             f"files hpsearch did not write ({', '.join(added[:5])})" if added else "files hpsearch did not write")
    raise ConfigError(f"{what} {path}: holds {found}, which a new {kind} of {owner!r} would replace; name a new or "
                      f"empty folder, or an earlier {kind} of {owner!r}")


@contextmanager
def staged_folder(path: Path) -> Iterator[Path]:
    """Yield a new empty folder beside `path`; when the body succeeds it replaces `path` (checked by
    `check_replaceable`), else it is removed. The old folder is moved aside before the new one moves
    in and removed only then, so a crash leaves one of the two whole, under its own name or aside."""
    made = _missing_ancestors(path.parent)
    path.parent.mkdir(parents=True, exist_ok=True)
    staged = Path(tempfile.mkdtemp(prefix=f".{path.name}.new-", dir=path.parent))
    os.chmod(staged, 0o777 & ~_umask())  # mkdtemp makes 0700; a report is read by others, as a mkdir'ed folder
    aside: Path | None = None
    try:
        yield staged
        if path.is_dir():
            aside = Path(tempfile.mkdtemp(prefix=f".{path.name}.old-", dir=path.parent))
            os.replace(path, aside / path.name)
        try:
            os.replace(staged, path)
        except OSError:
            if aside is not None:  # put the old one back: one of the two stays whole under its own name
                os.replace(aside / path.name, path)
            raise
    except OSError as exc:  # a full disk names no file: name the folder being written
        raise _naming(exc, path) from exc
    finally:
        if staged.exists():
            shutil.rmtree(staged, ignore_errors=True)
            _remove_empty(made)
        if aside is not None and path.is_dir():  # the new (or the restored old) folder is in place: the rest is
            shutil.rmtree(aside, ignore_errors=True)  # housekeeping; if neither is, the old one stays aside


# --------------------------------------------------------------------------- YAML


MERGE_TAG, VALUE_TAG = "tag:yaml.org,2002:merge", "tag:yaml.org,2002:value"


class _StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a key given twice in one mapping (PyYAML keeps the last silently:
    a repeated `stop:` would quietly replace the first)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, yaml.Node] = {}
        for key_node, _ in node.value:
            if key_node.tag in (MERGE_TAG, VALUE_TAG):  # `<<: *base`: merged keys may be overridden here
                continue
            key = self.construct_object(key_node, deep=True)  # type: ignore[no-untyped-call]
            try:
                duplicate = key in seen
            except TypeError:  # an unhashable key: PyYAML's own error says so below
                break
            if duplicate:
                first = seen[key].start_mark
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} given twice in one mapping (first on line {first.line + 1}); "
                    "keep one", key_node.start_mark)
            seen[key] = key_node
        return super().construct_mapping(node, deep=deep)


def parse_yaml(text: str, source: str) -> Any:
    """Parse YAML text strictly and safely (no tags that build objects, no repeated keys).

    Raises:
        ConfigError: naming `source`, the line and column, and what is wrong there.
    """
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        what = "; ".join(" ".join(str(p).split()) for p in (exc.problem, exc.context) if p)
        raise ConfigError(f"{where}: not valid YAML: {what or type(exc).__name__}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {' '.join(str(exc).split())}") from exc
    except RecursionError as exc:
        raise ConfigError(f"{source}: not valid YAML: nested too deeply") from exc
    except ValueError as exc:  # an integer of more than 4300 digits (Python's limit on converting them)
        raise ConfigError(f"{source}: not valid YAML: a number too long to read ({exc})") from exc


def read_yaml(path: Path, kind: str = "config") -> Any:
    """Parse a YAML file safely; a missing, unreadable, binary, huge or malformed file is one ConfigError naming it."""
    data = parse_yaml(read_text(path, kind), str(path))
    check_tree(data, str(path))
    return data if data is not None else {}


def check_tree(data: Any, source: str, limit: int = 100_000) -> None:
    """Refuse YAML whose aliases make a cycle or blow up (`&a [*a]`, "billion laughs").

    Validation walks and copies the loaded values; a cycle would recurse forever and an
    alias bomb would expand to gigabytes.
    """
    count, stack = 0, [(data, 0, frozenset[int]())]
    while stack:
        node, depth, parents = stack.pop()
        count += 1
        if count > limit or depth > 64:
            raise ConfigError(f"{source}: YAML too large or nested too deeply once its aliases are expanded")
        if isinstance(node, (dict, list)):
            if id(node) in parents:
                raise ConfigError(f"{source}: YAML alias refers to itself (a cycle); write the values out")
            children = list(node.keys()) + list(node.values()) if isinstance(node, dict) else node
            stack.extend((child, depth + 1, parents | {id(node)}) for child in children)
