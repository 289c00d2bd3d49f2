"""`bedrock-rules lsp`: a language server for rule files, over stdio (pygls, extra `lsp`).

A rule file is read with the other `*.rules` files of its folder, as `check` reads a
ruleset; the editor's unsaved text stands in for the file's. Diagnostics are the parser's,
the compiler's and `check`'s analyses, with the CLI's codes and spans (both name files
relative to the working folder). A ruleset that does not compile is not analysed by
`check`; here, so that an analyst sees a typo and a gap at once, the lines the errors
point at are left out (blanked, so no line moves) and the rest is compiled and analysed
again, a few times at most. What such a second pass finds is reported as usual.

Everything else reads the syntax tree, whose names carry their own spans: hover, go to
definition and references for models, regions, kinds and fields, completion and document
symbols; formatting is `fmt`'s.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
from lsprotocol import types as lsp  # optional dependency: only `bedrock-rules lsp` imports this module
from pygls.lsp.server import LanguageServer  # optional dependency, as above
from pygls.uris import from_fs_path, to_fs_path

from . import __version__
from . import model as m
from .bill import decimal_text
from .checker import analyse
from .compiler import compile_files
from .errors import Diagnostic, RuleFileError
from .examples import run as run_examples
from .formatter import format_text
from .loader import load_program, read_rule_text, rule_paths, shown_path
from .overlays import compile_layers, list_placement
from .parser import KEYWORDS, STATEMENT_STARTS, parse
from .program import Program
from .ruleset import Ruleset

SOURCE = "bedrock-rules"
RETRIES = 4  # passes that leave out the lines of errors, to analyse the rest
BLOCKS = (m.Provider, m.Kind, m.Record, m.Example, m.PriceTable)


# The symbols of the syntax tree ---------------------------------------------------------


@attrs.frozen
class Symbol:
    """A name written in a rule file: what it names, and whether it is where that is defined."""

    category: str  # model | region | kind | field | provider
    name: str  # canonical: a model's alias is its model's name
    span: m.Span
    definition: bool = False
    owner: str | None = None  # a field's kind


def _span(name: Any, fallback: m.Span) -> m.Span:
    return m.span_of(name, fallback)


def _names_by_field(field: str, values: Iterable[Any], fallback: m.Span, aliases: Mapping[str, str], kind: str | None):
    """Values compared with a field: models and regions are symbols; the field itself is one too."""
    category = {"model": "model", "region": "region", "kind": "kind", "provider": "provider"}.get(field)
    for value in values:
        text = value.text if isinstance(value, m.Word) else value if isinstance(value, str) else None
        if text is None or category is None:
            continue
        span = value.span if isinstance(value, m.Word) else _span(value, fallback)
        yield Symbol(category, aliases.get(text, text) if category == "model" else text, span)


def _condition(cond: Any, fallback: m.Span, aliases: Mapping[str, str], kind: str | None) -> Iterator[Symbol]:
    if isinstance(cond, (m.AllOf, m.AnyOf)):
        for part in cond.parts:
            yield from _condition(part, fallback, aliases, kind)
    elif isinstance(cond, m.Not):
        yield from _condition(cond.part, fallback, aliases, kind)
    elif isinstance(cond, (m.Equals, m.Contains)):
        yield Symbol("field", str(cond.field), _span(cond.field, cond.span), owner=kind)
        yield from _names_by_field(str(cond.field), [cond.value], cond.span, aliases, kind)
    elif isinstance(cond, m.Member):
        yield Symbol("field", str(cond.field), _span(cond.field, cond.span), owner=kind)
        yield from _names_by_field(str(cond.field), cond.values, cond.span, aliases, kind)
    elif isinstance(cond, m.Compare):
        yield from _expr(cond.left, kind)
        yield from _expr(cond.right, kind)


def _expr(expr: Any, kind: str | None) -> Iterator[Symbol]:
    if isinstance(expr, m.FieldRef):
        yield Symbol("field", str(expr.name), _span(expr.name, expr.span), owner=kind)
    elif isinstance(expr, m.Binary):
        yield from _expr(expr.left, kind)
        yield from _expr(expr.right, kind)
    elif isinstance(expr, m.Call):
        for arg in expr.args:
            yield from _expr(arg, kind)
    elif isinstance(expr, m.SumEach):
        yield from _expr(expr.body, None)
        yield Symbol("field", str(expr.list_field), _span(expr.list_field, expr.span), owner=kind)


def symbols(file: m.RuleFile, aliases: Mapping[str, str]) -> Iterator[Symbol]:
    """Every model, region, kind, provider and field name written in a file, defined or used."""
    for st in file.statements:
        if isinstance(st, m.Region):
            yield Symbol("region", str(st.name), _span(st.name, st.span), True)
        elif isinstance(st, m.Provider):
            yield Symbol("provider", str(st.name), _span(st.name, st.span), True)
            for model in st.models:
                yield Symbol("model", str(model.name), _span(model.name, model.span), True)
                for alias in model.aliases:
                    yield Symbol("model", str(model.name), _span(alias, model.span))
        elif isinstance(st, (m.Kind, m.Record)):
            yield Symbol("kind", str(st.name), _span(st.name, st.span), True)
            for f in st.fields:
                yield Symbol("field", str(f.name), _span(f.name, f.span), True, str(st.name))
            for d in getattr(st, "derived", ()):
                yield Symbol("field", str(d.name), _span(d.name, d.span), True, str(st.name))
                yield from _expr(d.expr, str(st.name))
        elif isinstance(st, m.PriceTable):
            kind = str(st.kind)
            yield Symbol("kind", kind, _span(st.kind, st.span))
            for region in st.regions:
                yield Symbol("region", str(region), _span(region, st.span))
            if st.when is not None:
                yield from _condition(st.when, st.span, aliases, kind)
            if st.charging is not None:
                yield Symbol("field", str(st.charging.quantity), _span(st.charging.quantity, st.charging.span), owner=kind)
            for column in st.columns:
                if isinstance(column, m.KeyColumn):
                    yield Symbol("field", str(column.field), _span(column.field, column.span), owner=kind)
                elif isinstance(column, m.ChargeColumn):
                    yield Symbol("field", str(column.quantity), _span(column.quantity, column.span), owner=kind)
                else:
                    yield from _condition(column.condition, column.span, aliases, kind)
            for row in st.rows:
                for column, cell in zip(st.columns, row, strict=False):
                    if isinstance(cell, m.ValueCell) and isinstance(column, m.KeyColumn):
                        yield from _names_by_field(str(column.field), cell.values, cell.span, aliases, kind)
        elif isinstance(st, m.Offer):
            for named in st.models:
                yield Symbol("model", aliases.get(str(named), str(named)), _span(named, st.span))
            for region in st.regions:
                yield Symbol("region", str(region), _span(region, st.span))
        elif isinstance(st, (m.Refuse, m.Require, m.Free)):
            for kind in st.kinds:
                yield Symbol("kind", str(kind), _span(kind, st.span))
            owner = str(st.kinds[0]) if len(st.kinds) == 1 else None
            for cond in (getattr(st, "when", None), getattr(st, "condition", None)):
                if cond is not None:
                    yield from _condition(cond, st.span, aliases, owner)
        elif isinstance(st, m.Example):
            for item in st.items:
                yield Symbol("kind", str(item.kind), _span(item.kind, item.span))
                for name, value in item.fields:
                    yield Symbol("field", str(name), _span(name, item.span), owner=str(item.kind))
                    yield from _names_by_field(str(name), [value], item.span, aliases, str(item.kind))


def _contains(span: m.Span, line: int, column: int) -> bool:
    """Whether 1-based (line, column) is inside the span (a one-line span when it has no end)."""
    end_line = span.end_line or span.line
    end_column = span.end_column or span.column + 1
    if not (span.line <= line <= end_line):
        return False
    if line == span.line and column < span.column:
        return False
    return not (line == end_line and column >= end_column)


# Analysis of a folder ------------------------------------------------------------------


@attrs.define
class Analysis:
    """One folder of rule files, as the editor has them: parsed, compiled, checked, indexed."""

    paths: dict[str, Path]  # shown name -> file
    texts: dict[str, str]  # shown name -> the text analysed
    files: dict[str, m.RuleFile]  # shown name -> the syntax tree (of the text with error lines left out)
    problems: dict[str, list[tuple[Diagnostic, tuple[m.Span, ...]]]]  # shown name -> diagnostics
    program: Program | None
    symbols: list[Symbol]
    _examples: list[Any] | None = None

    def shown(self, path: Path) -> str | None:
        for shown, known in self.paths.items():
            if known == path:
                return shown
        return None

    def at(self, shown: str, line: int, column: int) -> Symbol | None:
        found = [s for s in self.symbols if s.span.path == shown and _contains(s.span, line, column)]
        return found[0] if found else None

    def examples(self) -> list[Any]:
        if self._examples is None:
            self._examples = [] if self.program is None else run_examples(Ruleset(self.program))
        return self._examples


def analyse_folder(folder: Path, edited: Mapping[Path, str]) -> Analysis:
    """The folder's rule files, with the editor's text for those it has open."""
    paths = {p.resolve() for p in rule_paths(folder)} if folder.is_dir() else set()
    paths |= {p for p in edited if p.parent == folder}
    by_shown: dict[str, Path] = {}
    texts: dict[str, str] = {}
    problems: dict[str, list[tuple[Diagnostic, tuple[m.Span, ...]]]] = {}
    for path in sorted(paths):
        shown = shown_path(path)
        by_shown[shown] = path
        problems[shown] = []
        try:
            texts[shown] = edited[path] if path in edited else read_rule_text(str(path))
        except RuleFileError as error:
            problems[shown].extend((d, ()) for d in error.diagnostics)
        except (OSError, UnicodeDecodeError) as error:
            reason = getattr(error, "strerror", None) or str(error)
            problems[shown].append((Diagnostic("BR001", f"cannot read rule file: {reason}", m.Span(shown, 1, 1)), ()))
    current = dict(texts)
    files: dict[str, m.RuleFile] = {}
    program = None
    seen: set[tuple[str, m.Span]] = set()
    root = shown_path(folder)
    for _ in range(RETRIES + 1):
        found: list[Diagnostic] = []
        files = {}
        for shown, text in current.items():
            try:
                files[shown] = parse(text, shown)
            except RuleFileError as error:
                found.extend(error.diagnostics)
        lines = {s: t.splitlines() for s, t in current.items()}
        overlay = bool(files) and all(f.statements and isinstance(f.statements[0], m.OverlayHeader) for f in files.values())
        if not found and overlay:
            # A folder of overlay files: checked as a layer on the bundled ruleset, the list an
            # editor knows without a command line (`check --overlay` checks it on any other).
            try:
                program = compile_layers(load_program(), [(root, list(files.values()))], lines)
            except RuleFileError as error:
                found.extend(error.diagnostics)
        elif not found:
            found.extend(list_placement(list(files.values()), lines))
        if not found and not overlay:
            try:
                program = compile_files(list(files.values()), lines, root)
            except RuleFileError as error:
                found.extend(error.diagnostics)
        new = [d for d in found if (d.code, d.span) not in seen]
        for d in new:
            seen.add((d.code, d.span))
            problems.setdefault(d.span.path, []).append((d, ()))
        if program is not None or not new:
            break
        current = _without(current, files, new)
    if program is not None:
        for finding in analyse(program):
            if (finding.code, finding.span) not in seen:
                problems.setdefault(finding.span.path, []).append(
                    (Diagnostic(finding.code, finding.message, finding.span), finding.related)
                )
    aliases = dict(program.aliases) if program is not None else _aliases(files.values())
    index = [s for file in files.values() for s in symbols(file, aliases)]
    return Analysis(by_shown, texts, files, problems, program, index)


def _aliases(files: Iterable[m.RuleFile]) -> dict[str, str]:
    out = {}
    for file in files:
        for st in file.statements:
            if isinstance(st, m.Provider):
                for model in st.models:
                    out.update({str(a): str(model.name) for a in model.aliases})
    return out


def _without(texts: Mapping[str, str], files: Mapping[str, m.RuleFile], errors: Sequence[Diagnostic]) -> dict[str, str]:
    """The texts with the lines of each error blanked: a block's whole statement when the
    error is on its first line, else the error's own lines. No line moves."""
    blank: dict[str, set[int]] = {}
    for d in errors:
        lines = blank.setdefault(d.span.path, set())
        first, last = d.span.line, max(d.span.end_line, d.span.line)
        file = files.get(d.span.path)
        for st in file.statements if file else ():
            end = st.span.end_line or st.span.line
            if st.span.line <= first <= end:
                if isinstance(st, BLOCKS) and first == st.span.line:
                    first, last = st.span.line, end
                break
        lines.update(range(first, last + 1))
    out = dict(texts)
    for shown, lines in blank.items():
        if shown in out:
            rows = out[shown].split("\n")
            out[shown] = "\n".join("" if i + 1 in lines else row for i, row in enumerate(rows))
    return out


# Positions -------------------------------------------------------------------------------


def to_range(span: m.Span) -> lsp.Range:
    """A span as an LSP range (0-based); a span without an end covers one character."""
    end_line = span.end_line or span.line
    end_column = span.end_column if span.end_line else span.column + 1
    return lsp.Range(
        start=lsp.Position(line=max(span.line - 1, 0), character=max(span.column - 1, 0)),
        end=lsp.Position(line=max(end_line - 1, 0), character=max(end_column - 1, 0)),
    )


# The server ------------------------------------------------------------------------------


class RulesServer(LanguageServer):
    def __init__(self) -> None:
        super().__init__("bedrock-rules", __version__)
        self.analyses: dict[Path, Analysis] = {}

    def folder(self, uri: str) -> Path:
        return Path(to_fs_path(uri) or uri).resolve().parent

    def edited(self) -> dict[Path, str]:
        return {
            Path(to_fs_path(uri) or uri).resolve(): doc.source
            for uri, doc in self.workspace.text_documents.items()
            if uri.endswith(".rules")
        }

    def analysis(self, uri: str) -> Analysis:
        folder = self.folder(uri)
        if folder not in self.analyses:
            self.analyses[folder] = analyse_folder(folder, self.edited())
        return self.analyses[folder]

    def refresh(self, uri: str) -> None:
        """Analyse the folder again and publish every file's diagnostics."""
        folder = self.folder(uri)
        self.analyses.pop(folder, None)
        analysis = self.analysis(uri)
        for shown, problems in analysis.problems.items():
            path = analysis.paths.get(shown)
            if path is None:
                continue
            self.text_document_publish_diagnostics(
                lsp.PublishDiagnosticsParams(uri=from_fs_path(str(path)) or str(path), diagnostics=[
                    self.diagnostic(d, related, analysis) for d, related in problems
                ])
            )

    def diagnostic(self, d: Diagnostic, related: Sequence[m.Span], analysis: Analysis) -> lsp.Diagnostic:
        info = []
        for span in related:
            path = analysis.paths.get(span.path)
            if path is not None:
                info.append(lsp.DiagnosticRelatedInformation(
                    location=lsp.Location(uri=from_fs_path(str(path)) or str(path), range=to_range(span)),
                    message="see also",
                ))
        return lsp.Diagnostic(
            range=to_range(d.span), message=d.message, severity=lsp.DiagnosticSeverity.Error, code=d.code,
            source=SOURCE, related_information=info or None,
        )

    def located(self, uri: str, position: lsp.Position) -> tuple[Analysis, str | None, int, int]:
        analysis = self.analysis(uri)
        shown = analysis.shown(Path(to_fs_path(uri) or uri).resolve())
        return analysis, shown, position.line + 1, position.character + 1

    def location(self, analysis: Analysis, span: m.Span) -> lsp.Location | None:
        path = analysis.paths.get(span.path)
        return None if path is None else lsp.Location(uri=from_fs_path(str(path)) or str(path), range=to_range(span))


server = RulesServer()


@server.feature(lsp.TEXT_DOCUMENT_DID_OPEN)
def did_open(ls: RulesServer, params: lsp.DidOpenTextDocumentParams) -> None:
    ls.refresh(params.text_document.uri)


@server.feature(lsp.TEXT_DOCUMENT_DID_CHANGE)
def did_change(ls: RulesServer, params: lsp.DidChangeTextDocumentParams) -> None:
    ls.refresh(params.text_document.uri)


@server.feature(lsp.TEXT_DOCUMENT_DID_SAVE)
def did_save(ls: RulesServer, params: lsp.DidSaveTextDocumentParams) -> None:
    ls.refresh(params.text_document.uri)


@server.feature(lsp.TEXT_DOCUMENT_DID_CLOSE)
def did_close(ls: RulesServer, params: lsp.DidCloseTextDocumentParams) -> None:
    ls.refresh(params.text_document.uri)  # the file on disk stands in for the closed text again


# Hover -----------------------------------------------------------------------------------


@server.feature(lsp.TEXT_DOCUMENT_HOVER)
def hover(ls: RulesServer, params: lsp.HoverParams) -> lsp.Hover | None:
    analysis, shown, line, column = ls.located(params.text_document.uri, params.position)
    if shown is None:
        return None
    symbol = analysis.at(shown, line, column)
    if symbol is not None:
        text = describe(analysis, symbol)
        span = symbol.span
    else:
        found = _cell_at(analysis, shown, line, column)
        if found is None:
            return None
        text, span = found
    if not text:
        return None
    return lsp.Hover(contents=lsp.MarkupContent(kind=lsp.MarkupKind.Markdown, value=text), range=to_range(span))


def describe(analysis: Analysis, symbol: Symbol) -> str:
    """What a hover shows for a name: its definition and what the rules say about it."""
    program = analysis.program
    name = symbol.name
    if symbol.category == "model":
        out = [f"**model `{name}`**"]
        if program is not None and name in program.models:
            info = program.models[name]
            out[0] += f" {info.title} (provider `{info.provider}`)" if info.title else f" (provider `{info.provider}`)"
            ids = [alias for alias, model in program.aliases.items() if model == name and alias != name]
            if ids:
                out.append("model ids: " + ", ".join(f"`{i}`" for i in ids))
            regions = _offered(program, name)
            out.append("offered in: " + (", ".join(f"`{r}`" for r in regions) if regions else "every region its price tables name"))
            rules = [r for r in program.rules if _mentions(r, "model", name)]
            out.extend(_rates(rules, program.currency))
        return "\n\n".join(out)
    if symbol.category == "region":
        out = [f"**region `{name}`**"]
        if program is not None and name in program.regions:
            region = program.regions[name]
            if region.title:
                out[0] += f" {region.title}"
            only = sorted({str(mo) for f in program.files for st in f.statements if isinstance(st, m.Offer)
                           and name in st.regions for mo in st.models})
            if only:
                out.append("models offered only in some regions, here among them: " + ", ".join(f"`{o}`" for o in only))
            rules = [r for r in program.rules if _mentions(r, "region", name)]
            out.append(f"{len(rules)} price rules apply here")
        return "\n\n".join(out)
    if symbol.category == "kind":
        out = [f"**kind `{name}`**"]
        if program is not None and name in program.kinds:
            kind = program.kinds[name]
            if kind.title:
                out[0] += f" {kind.title}"
            out.append("\n".join(f"- `{f.name}`" + (f" ({f.unit})" if getattr(f, "unit", None) else "") for f in kind.fields))
            if kind.derived:
                out.append("derived: " + ", ".join(f"`{d.name}`" for d in kind.derived))
        return "\n\n".join(out)
    if symbol.category == "field":
        owners = sorted({s.owner for s in analysis.symbols if s.category == "field" and s.definition and s.name == name and s.owner})
        out = [f"**field `{name}`**"]
        if owners:
            out.append("of " + ", ".join(f"`{o}`" for o in owners))
        return "\n\n".join(out)
    return f"**provider `{name}`**"


def _offered(program: Program, model: str) -> list[str]:
    return sorted({str(r) for f in program.files for st in f.statements if isinstance(st, m.Offer)
                   and any(program.aliases.get(str(mo), str(mo)) == model for mo in st.models) for r in st.regions})


def _mentions(rule: Any, field: str, value: str) -> bool:
    """Whether a rule's conditions name `value` for `field` (`model = x`, `model in x, y`)."""
    def walk(cond: Any) -> bool:
        if isinstance(cond, (m.AllOf, m.AnyOf)):
            return any(walk(p) for p in cond.parts)
        if isinstance(cond, m.Not):
            return walk(cond.part)
        if isinstance(cond, m.Equals) and str(cond.field) == field and not cond.negated:
            return isinstance(cond.value, m.Word) and cond.value.text == value
        if isinstance(cond, m.Member) and str(cond.field) == field and not cond.negated:
            return value in [str(v) for v in cond.values]
        return False

    return any(walk(c) for c in rule.conditions)


def _rates(rules: Sequence[Any], currency: str, limit: int = 12) -> list[str]:
    if not rules:
        return ["no price rule names it"]
    lines = [f"- {_rate(rule, currency)} — `{rule.where}`" for rule in rules[:limit]]
    if len(rules) > limit:
        lines.append(f"- … and {len(rules) - limit} more")
    return ["rates:\n" + "\n".join(lines)]


def _rate(rule: Any, currency: str) -> str:
    if rule.refusal is not None:
        return f"{rule.quantity}: not offered ({rule.refusal or '-'})"
    if rule.rate is None:
        return f"{rule.quantity}: free" + (f" ({rule.free})" if rule.free else "")
    per = "each" if rule.per == 1 else f"per {decimal_text(rule.per)}"
    return f"{rule.quantity}: {decimal_text(rule.rate)} {currency} {per}"


def _cell_at(analysis: Analysis, shown: str, line: int, column: int) -> tuple[str, m.Span] | None:
    """A hover on a cell of a price table: the rule it makes, and the examples that use it."""
    file = analysis.files.get(shown)
    if file is None:
        return None
    for st in file.statements:
        if not isinstance(st, m.PriceTable):
            continue
        for row in st.rows:
            for column_spec, cell in zip(st.columns, row, strict=False):
                if not _contains(cell.span, line, column):
                    continue
                program = analysis.program
                rules = [r for r in program.rules if r.span == cell.span] if program is not None else []
                out = [f"**prices `{st.kind}`**" + (" in " + ", ".join(f"`{r}`" for r in st.regions) if st.regions else "")]
                if not rules:
                    out.append(_column_text(column_spec))
                for rule in rules:
                    assert program is not None  # rules are found in a program only
                    out.append(f"{_rate(rule, program.currency)}\n\nrule `{rule.id}`")
                    used = [
                        r.example.title for r in analysis.examples() if r.bill
                        and any(c.rule_id == rule.id for item in r.bill.items for c in item.charges)
                    ]
                    out.append("examples that use it: " + ("; ".join(f"“{t}”" for t in used) if used else "none"))
                return "\n\n".join(out), cell.span
    return None


def _column_text(column: Any) -> str:
    if isinstance(column, m.KeyColumn):
        return f"column `{column.field}`"
    if isinstance(column, m.ChargeColumn):
        return f"column `{column.quantity}` per {decimal_text(column.per)}"
    return "a condition column"


# Definition and references ---------------------------------------------------------------


def _same(a: Symbol, b: Symbol) -> bool:
    if a.category != b.category or a.name != b.name:
        return False
    # A field of one kind is not the field of the same name of another, when both are known.
    return a.category != "field" or a.owner is None or b.owner is None or a.owner == b.owner


@server.feature(lsp.TEXT_DOCUMENT_DEFINITION)
def definition(ls: RulesServer, params: lsp.DefinitionParams) -> list[lsp.Location] | None:
    analysis, shown, line, column = ls.located(params.text_document.uri, params.position)
    symbol = analysis.at(shown, line, column) if shown else None
    if symbol is None:
        return None
    found = [ls.location(analysis, s.span) for s in analysis.symbols if s.definition and _same(s, symbol)]
    return [f for f in found if f is not None] or None


@server.feature(lsp.TEXT_DOCUMENT_REFERENCES)
def references(ls: RulesServer, params: lsp.ReferenceParams) -> list[lsp.Location] | None:
    analysis, shown, line, column = ls.located(params.text_document.uri, params.position)
    symbol = analysis.at(shown, line, column) if shown else None
    if symbol is None:
        return None
    include = params.context.include_declaration
    found = [
        ls.location(analysis, s.span) for s in analysis.symbols if _same(s, symbol) and (include or not s.definition)
    ]
    return [f for f in found if f is not None]


# Completion ------------------------------------------------------------------------------

_WORD_BEFORE = re.compile(r"[\w.:\-]*$")


@server.feature(lsp.TEXT_DOCUMENT_COMPLETION, lsp.CompletionOptions(trigger_characters=[" ", "|", ","]))
def completion(ls: RulesServer, params: lsp.CompletionParams) -> lsp.CompletionList:
    analysis = ls.analysis(params.text_document.uri)
    document = ls.workspace.get_text_document(params.text_document.uri)
    lines = document.source.split("\n")
    line = lines[params.position.line] if params.position.line < len(lines) else ""
    before = _WORD_BEFORE.search(line[: params.position.character])
    prefix = before.group() if before is not None else ""
    items: dict[str, lsp.CompletionItem] = {}

    def add(label: str, kind: lsp.CompletionItemKind, detail: str) -> None:
        if label.startswith(prefix) and label not in items:
            items[label] = lsp.CompletionItem(label=label, kind=kind, detail=detail)

    for symbol in analysis.symbols:
        if symbol.definition:
            kind = {
                "model": lsp.CompletionItemKind.Value, "region": lsp.CompletionItemKind.EnumMember,
                "kind": lsp.CompletionItemKind.Class, "field": lsp.CompletionItemKind.Field,
                "provider": lsp.CompletionItemKind.Module,
            }[symbol.category]
            add(symbol.name, kind, symbol.category + (f" of {symbol.owner}" if symbol.owner else ""))
    if analysis.program is not None:
        for alias, model in analysis.program.aliases.items():
            add(alias, lsp.CompletionItemKind.Value, f"model id of {model}")
    for keyword in sorted(KEYWORDS | STATEMENT_STARTS | {"model", "item"}):
        add(keyword, lsp.CompletionItemKind.Keyword, "keyword")
    return lsp.CompletionList(is_incomplete=False, items=list(items.values()))


# Formatting and symbols ------------------------------------------------------------------


@server.feature(lsp.TEXT_DOCUMENT_FORMATTING)
def formatting(ls: RulesServer, params: lsp.DocumentFormattingParams) -> list[lsp.TextEdit] | None:
    document = ls.workspace.get_text_document(params.text_document.uri)
    try:
        formatted = format_text(document.source, shown_path(Path(document.path)))
    except RuleFileError:
        return None  # a file that does not parse is left as it is; its diagnostics say why
    if formatted == document.source:
        return []
    lines = document.source.split("\n")
    end = lsp.Position(line=len(lines) - 1, character=len(lines[-1]))
    return [lsp.TextEdit(range=lsp.Range(start=lsp.Position(line=0, character=0), end=end), new_text=formatted)]


@server.feature(lsp.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
def document_symbols(ls: RulesServer, params: lsp.DocumentSymbolParams) -> list[lsp.DocumentSymbol]:
    analysis, shown, _, _ = ls.located(params.text_document.uri, lsp.Position(line=0, character=0))
    file = analysis.files.get(shown) if shown else None
    if file is None:
        return []
    out = []
    for st in file.statements:
        found = _statement_symbol(st)
        if found is not None:
            out.append(found)
    return out


def _symbol(name: str, kind: lsp.SymbolKind, span: m.Span, selection: m.Span, children=None, detail=None):
    whole = to_range(span)
    chosen = to_range(selection)
    if (chosen.start.line, chosen.start.character) < (whole.start.line, whole.start.character) or (
        (chosen.end.line, chosen.end.character) > (whole.end.line, whole.end.character)
    ):
        chosen = whole
    return lsp.DocumentSymbol(name=name, kind=kind, range=whole, selection_range=chosen, children=children, detail=detail)


def _statement_symbol(st: Any) -> lsp.DocumentSymbol | None:
    if isinstance(st, m.Provider):
        models = [_symbol(str(mo.name), lsp.SymbolKind.Constant, mo.span, _span(mo.name, mo.span), detail=mo.title) for mo in st.models]
        return _symbol(str(st.name), lsp.SymbolKind.Module, st.span, _span(st.name, st.span), models, st.title)
    if isinstance(st, (m.Kind, m.Record)):
        fields = [_symbol(str(f.name), lsp.SymbolKind.Field, f.span, _span(f.name, f.span)) for f in st.fields]
        fields += [_symbol(str(d.name), lsp.SymbolKind.Property, d.span, _span(d.name, d.span)) for d in getattr(st, "derived", ())]
        return _symbol(str(st.name), lsp.SymbolKind.Class, st.span, _span(st.name, st.span), fields, st.title)
    if isinstance(st, m.PriceTable):
        name = f"prices {st.kind}" + (f" in {', '.join(map(str, st.regions))}" if st.regions else "")
        return _symbol(name, lsp.SymbolKind.Struct, st.span, _span(st.kind, st.span), detail=f"{len(st.rows)} rows")
    if isinstance(st, m.Example):
        return _symbol(st.title, lsp.SymbolKind.Event, st.span, st.span, detail=f"expect {decimal_text(st.expect)}")
    if isinstance(st, m.Region):
        return _symbol(str(st.name), lsp.SymbolKind.EnumMember, st.span, _span(st.name, st.span), detail=st.title)
    return None


def main() -> None:
    server.start_io()
