"""`bedrock-rules lsp` end to end: a client talks to the server in a subprocess over stdio,
as an editor does (pygls's own LanguageClient), and sees what an analyst would."""

from __future__ import annotations

import asyncio
import shutil
import sys
from pathlib import Path

import pytest
from lsprotocol import types as lsp
from pygls.lsp.client import LanguageClient
from pygls.uris import from_fs_path

from bedrock_rules.lsp import analyse_folder
from bedrock_rules.resources import bundled_rules
from conftest import run_cli

TIMEOUT = 60  # seconds for any one answer: a hung server fails the test rather than the run


class Editor:
    """A language client and what the server has published to it."""

    def __init__(self) -> None:
        self.client = LanguageClient("bedrock-rules-tests", "1")
        self.diagnostics: dict[str, list[lsp.Diagnostic]] = {}
        self.published = asyncio.Condition()

        @self.client.feature(lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
        async def publish(params: lsp.PublishDiagnosticsParams) -> None:
            async with self.published:
                self.diagnostics[params.uri] = params.diagnostics
                self.published.notify_all()

    async def start(self, folder: Path) -> None:
        await self.client.start_io(sys.executable, "-m", "bedrock_rules", "lsp", cwd=str(folder))
        await asyncio.wait_for(self.client.initialize_async(lsp.InitializeParams(
            capabilities=lsp.ClientCapabilities(), root_uri=from_fs_path(str(folder)),
        )), TIMEOUT)
        self.client.initialized(lsp.InitializedParams())

    def open(self, path: Path) -> str:
        uri = from_fs_path(str(path))
        self.client.text_document_did_open(lsp.DidOpenTextDocumentParams(
            text_document=lsp.TextDocumentItem(uri=uri, language_id="bedrock-rules", version=1, text=path.read_text(encoding="utf-8")),
        ))
        return uri

    async def diagnostics_of(self, uri: str) -> list[lsp.Diagnostic]:
        async with self.published:
            await asyncio.wait_for(self.published.wait_for(lambda: uri in self.diagnostics), TIMEOUT)
            return self.diagnostics[uri]

    async def stop(self) -> None:
        await asyncio.wait_for(self.client.shutdown_async(None), TIMEOUT)
        self.client.exit(None)
        await self.client.stop()


def session(folder: Path, script) -> None:
    """Run `script(editor)` against a server started in `folder`, then shut it down cleanly."""

    async def main() -> None:
        editor = Editor()
        await editor.start(folder)
        try:
            await script(editor)
        finally:
            await editor.stop()

    asyncio.run(main())


def position(text: str, line: int, snippet: str) -> lsp.Position:
    """The 0-based position of `snippet` on a 1-based line."""
    return lsp.Position(line=line - 1, character=text.split("\n")[line - 1].index(snippet))


@pytest.fixture
def rules(in_tmp) -> Path:
    """The bundled ruleset with a typo (line 19) and a gap (line 27) in stability.rules, and a
    table laid out by hand (line 28), in a folder the server runs in."""
    shutil.copytree(bundled_rules(), in_tmp / "rules")
    path = in_tmp / "rules" / "stability.rules"
    text = path.read_text(encoding="utf-8")
    for old, new in [
        ("when provider = stability:", "when provider = stabilty:"),
        ("| sdxl-0.8 | > 512        |", "| sdxl-0.8 | > 600        |"),
        ("| sdxl-1.0 | <= 1024      | 0.04        | 0.08       |", "| sdxl-1.0 | <= 1024 | 0.04 | 0.08 |"),
    ]:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    path.write_text(text, encoding="utf-8")
    return path


def test_a_rule_file_with_a_typo_and_a_gap(rules, in_tmp):
    """Both problems at once, with the CLI's codes and places; hover on a rate cell; a model
    name completed; the file formatted as `fmt` formats it."""
    text = rules.read_text(encoding="utf-8")
    lines = text.split("\n")
    assert lines[18].startswith("refuse training") and lines[26].startswith("| sdxl-0.8 | > 600") and "0.04" in lines[27]
    seen: dict[str, object] = {}

    async def script(editor: Editor) -> None:
        uri = editor.open(rules)
        seen["diagnostics"] = await editor.diagnostics_of(uri)
        seen["hover"] = await asyncio.wait_for(editor.client.text_document_hover_async(lsp.HoverParams(
            text_document=lsp.TextDocumentIdentifier(uri=uri), position=position(text, 28, "0.04"),
        )), TIMEOUT)
        after = position(text, 28, "sdxl-1.0")
        seen["completion"] = await asyncio.wait_for(editor.client.text_document_completion_async(lsp.CompletionParams(
            text_document=lsp.TextDocumentIdentifier(uri=uri), position=lsp.Position(line=after.line, character=after.character + 5),
        )), TIMEOUT)
        seen["formatting"] = await asyncio.wait_for(editor.client.text_document_formatting_async(lsp.DocumentFormattingParams(
            text_document=lsp.TextDocumentIdentifier(uri=uri), options=lsp.FormattingOptions(tab_size=2, insert_spaces=True),
        )), TIMEOUT)
        # The analyst fixes the typo, unsaved: the diagnostics follow the text in the editor.
        async with editor.published:
            del editor.diagnostics[uri]
        editor.client.text_document_did_change(lsp.DidChangeTextDocumentParams(
            text_document=lsp.VersionedTextDocumentIdentifier(uri=uri, version=2),
            content_changes=[lsp.TextDocumentContentChangeWholeDocument(text=text.replace("= stabilty:", "= stability:"))],
        ))
        seen["fixed"] = await editor.diagnostics_of(uri)

    session(in_tmp, script)

    # The typo stops the rules from loading; the gap is found all the same.
    diagnostics = {d.code: d for d in seen["diagnostics"]}
    assert set(diagnostics) == {"BR203", "BR302"}, [(d.code, d.message) for d in seen["diagnostics"]]
    typo, gap = diagnostics["BR203"], diagnostics["BR302"]
    assert typo.message.startswith("`stabilty` is not a provider (did you mean 'stability'?)")
    assert (typo.range.start.line, typo.range.start.character, typo.range.end.character) == (18, 41, 49)
    assert gap.message.startswith("gap between tiers: no row prices longest_side 513 for model sdxl-0.8")
    assert (gap.range.start.line, gap.range.start.character) == (26, 13)
    assert all(d.source == "bedrock-rules" and d.severity == lsp.DiagnosticSeverity.Error for d in diagnostics.values())
    # The same codes and places as `check`: the typo first, then, once it is fixed, the gap.
    assert "rules/stability.rules:19:42: error[BR203]: `stabilty` is not a provider" in run_cli("check", "--rules", "rules").out
    rules.write_text(text.replace("provider = stabilty:", "provider = stability:"), encoding="utf-8")
    assert "rules/stability.rules:27:14: error[BR302]: gap between tiers" in run_cli("check", "--rules", "rules").out

    hover = seen["hover"]
    assert isinstance(hover.contents, lsp.MarkupContent)
    shown = hover.contents.value
    assert "images: 0.04 USD each" in shown
    assert "rule `image/images[model = sdxl-1.0; longest_side <= 1024; steps <= 50; from 2024-07-01]`" in shown
    assert "examples that use it: “SDXL tiers" in shown
    assert hover.range.start == position(text, 28, "0.04")

    labels = [item.label for item in seen["completion"].items]
    assert "sdxl-1.0" in labels and "sdxl-0.8" in labels
    assert all(label.startswith("sdxl-") for label in labels)

    assert [d.code for d in seen["fixed"]] == ["BR302"]
    assert (seen["fixed"][0].range.start.line, seen["fixed"][0].range.start.character) == (26, 13)

    [edit] = seen["formatting"]
    formatted = run_cli("fmt", "-", stdin=text)
    assert edit.new_text == formatted.out
    assert "| sdxl-1.0 | <= 1024      | 0.04        | 0.08       |" in edit.new_text
    assert (edit.range.start.line, edit.range.start.character) == (0, 0)


def test_definition_references_and_symbols(in_tmp):
    shutil.copytree(bundled_rules(), in_tmp / "rules")
    stability = in_tmp / "rules" / "stability.rules"
    text = stability.read_text(encoding="utf-8")
    seen: dict[str, object] = {}

    async def script(editor: Editor) -> None:
        uri = editor.open(stability)
        diagnostics = await editor.diagnostics_of(uri)
        assert list(diagnostics) == []
        document = lsp.TextDocumentIdentifier(uri=uri)
        at_row = position(text, 28, "sdxl-1.0")
        seen["definition"] = await asyncio.wait_for(editor.client.text_document_definition_async(
            lsp.DefinitionParams(text_document=document, position=at_row)), TIMEOUT)
        seen["references"] = await asyncio.wait_for(editor.client.text_document_references_async(lsp.ReferenceParams(
            text_document=document, position=at_row, context=lsp.ReferenceContext(include_declaration=True))), TIMEOUT)
        seen["region"] = await asyncio.wait_for(editor.client.text_document_definition_async(lsp.DefinitionParams(
            text_document=document, position=position(text, 52, "us-east-1"))), TIMEOUT)
        seen["kind"] = await asyncio.wait_for(editor.client.text_document_hover_async(lsp.HoverParams(
            text_document=document, position=position(text, 23, "image"))), TIMEOUT)
        seen["field"] = await asyncio.wait_for(editor.client.text_document_definition_async(lsp.DefinitionParams(
            text_document=document, position=position(text, 23, "images"))), TIMEOUT)
        seen["model"] = await asyncio.wait_for(editor.client.text_document_hover_async(lsp.HoverParams(
            text_document=document, position=at_row)), TIMEOUT)
        seen["symbols"] = await asyncio.wait_for(editor.client.text_document_document_symbol_async(
            lsp.DocumentSymbolParams(text_document=document)), TIMEOUT)

    session(in_tmp, script)
    [model] = seen["definition"]
    assert model.uri == from_fs_path(str(stability)) and model.range.start == position(text, 9, "sdxl-1.0")
    places = sorted((Path(r.uri).name if "://" not in r.uri else r.uri.rsplit("/", 1)[-1], r.range.start.line + 1)
                    for r in seen["references"])
    assert ("stability.rules", 9) in places and ("stability.rules", 28) in places and ("stability.rules", 34) in places
    assert ("stability.rules", 60) in places  # an example's `model: sdxl-1.0`
    [region] = seen["region"]
    assert region.uri.endswith("/rules/shared.rules")
    shared = (in_tmp / "rules" / "shared.rules").read_text(encoding="utf-8").split("\n")
    assert shared[region.range.start.line].startswith("region us-east-1")
    assert "**kind `image`**" in seen["kind"].contents.value and "`steps`" in seen["kind"].contents.value
    assert all(loc.uri.endswith("/rules/shared.rules") for loc in seen["field"])
    model_hover = seen["model"].contents.value
    assert model_hover.startswith("**model `sdxl-1.0`** SDXL 1.0 (provider `stability`)")
    assert "model ids: `stability.stable-diffusion-xl-v1`" in model_hover
    assert "images: 0.04 USD each — `rules/stability.rules:28`" in model_hover
    assert "model_hours: 49.86 USD each — `rules/stability.rules:34`" in model_hover
    names = [s.name for s in seen["symbols"]]
    assert names[0] == "stability" and [c.name for c in seen["symbols"][0].children][:2] == ["sdxl-0.8", "sdxl-1.0"]
    assert "prices image" in names and "prices provisioned" in names
    assert "22. SDXL 1.0 provisioned: 1 model unit, 1-month term, 31 days" in names


def test_lsp_without_pygls_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "pygls.lsp.server", None)  # as if pygls were not installed
    monkeypatch.delitem(sys.modules, "bedrock_rules.lsp", raising=False)
    run = run_cli("lsp")
    assert run.code == 2
    assert "pip install 'bedrock-rules[lsp]'" in run.err


def test_a_folder_of_overlay_files_is_analysed_as_a_layer_on_the_bundled_ruleset(tmp_path):
    shutil.copy(Path(__file__).parent.parent / "examples" / "overlays" / "acme.rules", tmp_path / "acme.rules")
    analysis = analyse_folder(tmp_path, {})
    assert analysis.program is not None and analysis.program.layers
    assert [d.code for found in analysis.problems.values() for d, _ in found] == []
    assert [result.passed for result in analysis.examples()][-2:] == [True, True]  # acme's, priced with the overlay
    deal = 'overlay "Deal"\nadjust text by -20% when provider = anthropic\nadjust text by -10% when mode = batch\n'
    edited = {(tmp_path / "acme.rules").resolve(): deal}
    analysis = analyse_folder(tmp_path, edited)
    codes = [(d.code, d.span.line) for found in analysis.problems.values() for d, _ in found]
    assert codes == [("BR221", 3)]
