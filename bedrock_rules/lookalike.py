"""Rule text that reads differently from what it means: format characters and names that look alike.

Every way rule text reaches a program runs these checks: the parser on each file it
parses, and the loader on files whose parse it takes from the wheel or the parse cache,
and across all the files of a ruleset (a name in one file that looks like a name in
another is two names to the engine, one to a reviewer). Nothing here imports lark, so
loading the bundled ruleset stays fast.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator, Mapping, Sequence

from . import limits
from . import model as m
from .errors import Diagnostic

# Format characters (Unicode category Cf): bidi embeddings, overrides and isolates
# (U+202A-U+202E, U+2066-U+2069), marks (U+200E, U+200F, U+061C), zero-width spaces and
# joiners, the soft hyphen, a byte-order mark inside the text. Each is invisible or
# reorders what an editor or a review shows, so rule text could read differently from
# what it charges ("Trojan source"): refused wherever they stand, quoted text and comments too.
_NON_ASCII = re.compile(r"[^\x00-\x7f]")


def _is_format(char: str) -> bool:
    return unicodedata.category(char) == "Cf"


def blank_format_characters(text: str) -> str:
    """The text with each format character replaced by a space (columns unchanged)."""
    return _NON_ASCII.sub(lambda match: " " if _is_format(match.group()) else match.group(), text)


def format_characters(path: str, lines: Sequence[str]) -> list[Diagnostic]:
    """BR005 at each format character of a file's lines (at most the syntax-error limit)."""
    found: list[Diagnostic] = []
    for number, line in enumerate(lines, 1):
        if line.isascii():
            continue
        for match in _NON_ASCII.finditer(line):
            char = match.group()
            if not _is_format(char):
                continue
            column = match.start() + 1
            name = unicodedata.name(char, "a format character")
            found.append(Diagnostic(
                "BR005",
                f"invisible format character U+{ord(char):04X} ({name}): it can make the text read "
                "differently from what it means; remove it",
                m.Span(path, number, column, number, column + 1),
                line,
            ))
            if len(found) >= limits.MAX_SYNTAX_ERRORS:
                return found
    return found


def lines_of(text: str) -> list[str]:
    """A rule file's lines as the parser counts them: a leading BOM dropped, only "\\n" ends a line."""
    text = text.removeprefix("\ufeff")
    return [line.removesuffix("\r") for line in text.split("\n")]


# Names are matched against usage and logs character by character, so two names that
# look alike are two names. A name mixing Latin with another script (`model-а`
# with a Cyrillic `а`) is refused rather than flagged: every name has a Latin letter (the
# grammar asks for one), so a letter of another script in it has no use but to look
# like a different name, and a warning a `check` run may never see would let the file
# price. Latin letters with accents stay allowed; two names of a ruleset that differ
# only in them (`cafe`, `café`), or in compatibility forms (`ﬁ` for `fi`), are refused too,
# in one file or in two.
_LATIN_LIKE = {"\u0131": "i", "\u0251": "a", "\u0261": "g", "\u01c0": "l", "\u0269": "i", "\u028f": "y"}


def skeleton(name: str) -> str:
    """What a name looks like: compatibility forms folded, accents dropped, lookalike Latin
    letters replaced by the ASCII letter they resemble, case ignored."""
    decomposed = unicodedata.normalize("NFKD", name)
    plain = "".join(_LATIN_LIKE.get(c, c) for c in decomposed if not unicodedata.combining(c))
    return plain.casefold()


def foreign(char: str) -> bool:
    """A character of a name that is neither ASCII nor a Latin letter."""
    return not char.isascii() and not unicodedata.name(char, "").startswith("LATIN ")


# A name as the grammar's WORD reads it; quoted text and comments are passed over.
_WORD = r"(?=[\w.:\-]*[A-Za-z])[A-Za-z0-9_](?:[\w.:\-]*\w)?"
_TOKEN = re.compile(rf'"[^"\n]*"|#.*|(?P<word>{_WORD})')


def _words(lines: Sequence[str]) -> Iterator[tuple[str, int, int]]:
    for number, line in enumerate(lines, 1):
        for match in _TOKEN.finditer(line):
            if match.group("word"):
                yield match.group("word"), number, match.start() + 1


def lookalikes_across(files: Mapping[str, Sequence[str]]) -> list[Diagnostic]:
    """BR113 at each name of one file that looks like a different name of an earlier file.

    `files` are the lines of each file of a ruleset, in load order. Names of one file are
    compared by the parser; names mixing scripts are refused there (BR112).
    """
    # Only a name with a letter past ASCII can look like another (names differing only in
    # case are plainly two), and it stands on a line past ASCII: most rulesets have none.
    looks = {
        skeleton(name)
        for lines in files.values()
        for line in lines
        if not line.isascii()
        for name, _, _ in _words([line])
        if not name.isascii()
    }
    if not looks:
        return []
    first: dict[str, tuple[str, str, int]] = {}  # what a name looks like -> (the first name, its file, its line)
    found: list[Diagnostic] = []
    for path, lines in files.items():
        for name, number, column in _words(lines):
            look = name.casefold() if name.isascii() else skeleton(name)
            if look not in looks or any(foreign(c) for c in name):
                continue
            seen, where, line = first.setdefault(look, (name, path, number))
            if where != path and seen != name and not (name.isascii() and seen.isascii()):
                found.append(Diagnostic(
                    "BR113", f"the name `{name}` looks like `{seen}` ({where}:{line}); write one name one way",
                    m.Span(path, number, column, number, column + len(name)), lines[number - 1],
                ))
    return found
