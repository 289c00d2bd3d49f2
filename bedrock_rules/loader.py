"""The one front door for rule files: read them, apply the file limits, parse, compile.

Nothing else in the package opens a rule file. The loader keeps every file's text
(the program carries its lines), so checks, explanations and diffs quote source lines
without reading a file again. A program is compiled from a list of sources in order;
layering more sources over a ruleset (dated versions, overlays) means adding to that
list here, not teaching the compiler about files.
"""

from __future__ import annotations

import hashlib
import os
import stat
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath

import attrs

from . import limits, parsecache
from . import model as m
from .compiler import compile_files
from .errors import Diagnostic, RuleFileError
from .files import write_atomically
from .lookalike import format_characters, lines_of, lookalikes_across
from .overlays import compile_layers, list_placement
from .prebuilt import parsed_files
from .program import Program
from .resources import bundled_rules

# How messages and bills name the bundled ruleset, wherever it is installed: its files are
# cited from the ruleset's root as `NAME:FILE:LINE` (see `named_file`); the name is its folder's in rulesets/.
BUNDLED_NAME = "bedrock"


@attrs.frozen
class RuleSource:
    """The text of one rule file, under the name messages and bills show for it."""

    shown: str
    text: str

    @property
    def name(self) -> str:
        """The file's own name (`prices.rules`), without the folder or ruleset it is shown under."""
        return PurePosixPath(self.shown.rpartition(":")[2]).name


def load_program(path: str | Path | None = None, overlays: Sequence[str | Path] = ()) -> Program:
    """The program of a folder of rule files (or one file); the bundled ruleset by default.

    `overlays` are files or folders of overlay files, layered on it in order (see
    overlays.py): read here like the rules, never copied into them.
    Raises RuleFileError listing every problem in every file.
    """
    if path is None:
        sources, root, unread = read_rules(bundled_rules(), BUNDLED_NAME)
        program = compile_sources(sources, root, prebuilt=True, unread=unread)
    else:
        sources, root, unread = read_rules(Path(path))
        program = compile_sources(sources, root, unread=unread)
    if not overlays:
        return program
    layers: list[tuple[str, list[m.RuleFile]]] = []
    texts: dict[str, tuple[str, ...]] = {}
    diagnostics: list[Diagnostic] = []
    for overlay in overlays:
        try:
            layer_sources, shown, unread = read_rules(Path(overlay))
        except RuleFileError as error:
            diagnostics.extend(error.diagnostics)
            continue
        files, problems = _parse_all({source.shown: source.text for source in layer_sources}, {})
        diagnostics.extend([*unread, *problems])
        texts.update({source.shown: tuple(source.text.splitlines()) for source in layer_sources})
        layers.append((shown, files))
    try:
        layered = compile_layers(program, layers, texts)
    except RuleFileError as error:  # every problem at once: the unreadable overlays' and the others'
        diagnostics.extend(error.diagnostics)
    if diagnostics:
        raise RuleFileError(sorted(diagnostics, key=lambda d: (d.span.path, d.span.line, d.span.column)))
    return layered


def read_rules(root: Path, shown_root: str | None = None) -> tuple[list[RuleSource], str, list[Diagnostic]]:
    """The rule files of a folder (or the one file) in name order, and the folder's shown name.

    Messages and bills name files relative to the working folder, or from the ruleset's
    root as `shown_root:file` when given (the bundled ruleset's files are `NAME:FILE`
    wherever it is installed, so bills do not change with the install location). Files that cannot be read or are
    over the limits come back as diagnostics, to be reported with the parse's.
    """
    shown_dir = shown_root or shown_path(root)
    paths = rule_paths(root)
    too_many = limits.rule_file_count(len(paths))
    if too_many:
        raise RuleFileError([Diagnostic("BR003", too_many, m.Span(shown_dir, 1, 1))])
    diagnostics: list[Diagnostic] = []
    if not paths:
        diagnostics.append(Diagnostic("BR002", "no rule files (*.rules) here", m.Span(shown_dir, 1, 1)))
    sources: list[RuleSource] = []
    for path in paths:
        shown = named_file(shown_root, path.name) if shown_root else shown_path(path)
        data = b""
        try:
            data = _read_regular(path, shown)
            sources.append(RuleSource(shown, data.decode("utf-8")))
        except RuleFileError as error:
            diagnostics.extend(error.diagnostics)
        except UnicodeDecodeError as error:  # at the line and column of the first byte that is not UTF-8
            line = data.count(b"\n", 0, error.start) + 1
            column = len(data[data.rfind(b"\n", 0, error.start) + 1 : error.start].decode("utf-8", "replace")) + 1
            bad = data[error.start : error.end].hex(" ")
            diagnostics.append(Diagnostic("BR001", f"cannot read rule file: not UTF-8 text (byte {bad})", m.Span(shown, line, column)))
        except OSError as error:
            reason = error.strerror or str(error)
            diagnostics.append(Diagnostic("BR001", f"cannot read rule file: {reason}", m.Span(shown, 1, 1)))
    return sources, shown_dir, diagnostics


_KINDS = {
    stat.S_IFIFO: "a FIFO (named pipe)",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
    stat.S_IFDIR: "a folder",
}


def _read_regular(path: Path, shown: str) -> bytes:
    """The bytes of one rule file, refused (BR004) unless it is a regular file, and
    (BR003) past the size limit.

    Opened without blocking, so a FIFO cannot hang the open, and checked on the open
    descriptor, so nothing swapped in after a check is read; at most the limit plus one
    byte is read, so a file that grows, or a link to /dev/zero, cannot exhaust memory.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    descriptor = os.open(path, flags)
    try:
        mode = os.fstat(descriptor).st_mode
        if not stat.S_ISREG(mode):
            kind = _KINDS.get(stat.S_IFMT(mode), "not a file")
            message = f"not a regular file: {kind}; rule files are read only from regular files"
            raise RuleFileError([Diagnostic("BR004", message, m.Span(shown, 1, 1))])
        too_large = limits.rule_file_size(os.fstat(descriptor).st_size)
        if too_large:
            raise RuleFileError([Diagnostic("BR003", too_large, m.Span(shown, 1, 1))])
        chunks: list[bytes] = []
        left = limits.MAX_RULE_FILE_BYTES + 1
        while left > 0:
            chunk = os.read(descriptor, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
    finally:
        os.close(descriptor)
    data = b"".join(chunks)
    if len(data) > limits.MAX_RULE_FILE_BYTES:  # it grew after the size was read
        raise RuleFileError([Diagnostic("BR003", limits.rule_file_size(len(data)) or "", m.Span(shown, 1, 1))])
    return data


def compile_sources(
    sources: Sequence[RuleSource], root: str, prebuilt: bool = False, unread: Sequence[Diagnostic] = ()
) -> Program:
    """Parse and compile rule texts, in order; raises RuleFileError listing every problem.

    `prebuilt` lets the bundled ruleset use the parse its wheel ships (see prebuilt.py);
    `unread` are the problems met reading the files, reported with the parse's.
    """
    key = _compiled_key(sources, root) if not unread else None
    if key is not None:
        with _compiled_lock:
            program = _compiled.get(key)
            if program is not None:
                _compiled.move_to_end(key)
                return program
    program = _compile_sources(sources, root, prebuilt, unread)
    if key is not None:
        with _compiled_lock:
            _compiled[key] = program
            while len(_compiled) > _COMPILED_KEPT:
                _compiled.popitem(last=False)
    return program


# The programs compiled last in this process, by the texts and names they were compiled
# from: a program is immutable, so loading the same rules again (a command run many times
# in one process, a test suite) shares it rather than compiling it again.
_COMPILED_KEPT = 4
_compiled: OrderedDict[bytes, Program] = OrderedDict()
_compiled_lock = threading.Lock()


def _compiled_key(sources: Sequence[RuleSource], root: str) -> bytes:
    digest = hashlib.sha256()
    for part in (root, *(piece for source in sources for piece in (source.shown, source.text))):
        encoded = part.encode("utf-8", "surrogatepass")
        digest.update(len(encoded).to_bytes(8, "big"))
        digest.update(encoded)
    return digest.digest()


def _compile_sources(sources: Sequence[RuleSource], root: str, prebuilt: bool, unread: Sequence[Diagnostic]) -> Program:
    texts = {source.shown: source.text for source in sources}
    files, diagnostics = _parse_all(texts, parsed_files(texts) if prebuilt else {})
    lines = {shown: text.splitlines() for shown, text in texts.items()}
    # Names that look alike in two files (one file's are the parser's), known or not to the parser before.
    known = {(d.code, d.span.path, d.span.line, d.span.column) for d in diagnostics}
    diagnostics.extend(
        d for d in lookalikes_across({shown: lines_of(text) for shown, text in texts.items()})
        if (d.code, d.span.path, d.span.line, d.span.column) not in known
    )
    if not diagnostics:
        diagnostics.extend(list_placement(files, lines))
    if unread or diagnostics:
        if not unread and len(files) == len(texts):
            # Every file parsed, some with problems found while building its model: the
            # compiler's findings are reported with them (every problem at once). Not when
            # a file is missing, where every name it declares would be reported unknown.
            try:
                compile_files(files, lines, root)
            except RuleFileError as error:
                # One problem once: the compiler may say again, in its words, what the parser said at a place.
                known = {(d.code, d.span.path, d.span.line, d.span.column) for d in diagnostics}
                diagnostics.extend(
                    d for d in error.diagnostics if (d.code, d.span.path, d.span.line, d.span.column) not in known
                )
                diagnostics.sort(key=lambda d: (d.span.path, d.span.line, d.span.column))
        raise RuleFileError([*unread, *diagnostics])
    return compile_files(files, lines, root)


def _parse_all(texts: Mapping[str, str], parsed: Mapping[str, m.RuleFile]) -> tuple[list[m.RuleFile], list[Diagnostic]]:
    """The parsed files of rule texts (prebuilt, cached or parsed now), and every problem met."""
    files: list[m.RuleFile] = []
    diagnostics: list[Diagnostic] = []
    for shown, text in texts.items():
        ready = parsed.get(shown) or parsecache.load(text, shown)
        if ready is not None:
            # A parse taken as it was kept is checked as the parser checks text: a format
            # character in it can only mean the kept parse is not of this text, and is refused.
            diagnostics.extend(format_characters(shown, lines_of(text)))
            files.append(ready)
            continue
        from .parser import parse  # start-up time: lark is imported only when a file is not prebuilt

        try:
            files.append(parse(text, shown))
        except RuleFileError as error:
            diagnostics.extend(error.diagnostics)
            if isinstance(error.parsed, m.RuleFile):
                files.append(error.parsed)
            continue
        parsecache.store(text, shown, files[-1])
    return files, diagnostics


def rule_files_in(paths: Sequence[str]) -> tuple[list[str], list[str]]:
    """The rule files PATHs name (a folder's `*.rules`, in name order), once each, and a
    message for each folder that holds none; `fmt` rewrites them."""
    files: list[str] = []
    refused: list[str] = []
    for path in paths:
        folder = Path(path)
        if path != "-" and folder.is_dir():
            # Anything named *.rules but a folder: a link that leads nowhere, a FIFO is refused when read, as `check` refuses it.
            found = sorted(str(p) if path != "." else p.name for p in folder.glob("*.rules") if not p.is_dir())
            if not found:
                refused.append(f"{path}: no *.rules files in this folder")
            files.extend(found)
        else:
            files.append(path)
    return list(dict.fromkeys(files)), refused


def read_rule_text(path: str) -> str:
    """One rule file's text, exactly as written (line ends kept), for `fmt`.

    Raises OSError or UnicodeDecodeError when it cannot be read, and RuleFileError
    (BR003) past the size limit, as loading would.
    """
    return _read_regular(Path(path), path).decode("utf-8")


def write_rule_text(path: str, text: str) -> None:
    """Rewrite a rule file (`fmt`), with the line ends the text has, whole (`write_atomically`):
    a full disk or a stop midway leaves the file as it was. A link's file is rewritten, the link stays."""
    write_atomically(Path(os.path.realpath(path)), text.encode("utf-8"))


def rule_paths(root: Path) -> list[Path]:
    """The rule files of a folder in name order (or the one file given)."""
    if root.is_file():
        return [root]
    if root.exists() and not root.is_dir():  # a FIFO or device given by name: refused when read
        return [root]
    if not root.is_dir():
        raise RuleFileError([Diagnostic("BR001", "no such rule file or folder", m.Span(shown_path(root), 1, 1))])
    try:
        os.listdir(root)  # glob takes a folder it may not list for an empty one
    except OSError as error:
        why = f"cannot read this folder: {error.strerror or error}"
        raise RuleFileError([Diagnostic("BR001", why, m.Span(shown_path(root), 1, 1))]) from None
    return sorted(root.glob("*.rules"))


def named_file(root_name: str, file_name: str) -> str:
    """A file of a named ruleset as messages and bills cite it: `NAME:prices.rules`."""
    return f"{root_name}:{file_name}"


def shown_path(path: Path) -> str:
    """A path as messages and bills show it: relative to the working folder when under it,
    with `/` on every platform, so bills are byte-identical on Windows too."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except (ValueError, OSError, RuntimeError):  # not under it, or a symbolic link loop
        return path.as_posix()
