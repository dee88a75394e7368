"""Text from a server reaches the terminal with no escape sequence, bidi override or rich markup live."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any

import pytest
from rich.progress import Progress

from registry_client import RegistryError
from registry_client.cli import browse, curate, export, importing, output
from registry_client.cli.mlflow_import.apply import ModelOutcome
from registry_client.cli.mlflow_import.plan import Finding, ImportPlan, ModelPlan
from registry_client.cli.terminal import json_text, markup, visible
from registry_contract.assistant_views import StreamEnd
from registry_contract.views import ModelPublic

pytestmark = pytest.mark.unit

CLIPBOARD = "\x1b]52;c;cm0gLXJmIH4=\x07"  # OSC 52: writes the clipboard
LINK = "\x1b]8;;https://evil.example\x1b\\click\x1b]8;;\x1b\\"  # OSC 8: a link that shows other text
CLEAR = "\x1b[2J"
C1_CSI = "\x9b31m"  # the 8-bit CSI
BIDI = "\u202eexe.txt"  # right-to-left override
HOSTILE = f"a{CLIPBOARD}b{LINK}c{CLEAR}d{C1_CSI}e{BIDI}\x7f\x00"
RAW = ("\x1b", "\x07", "\x9b", "\u202e", "\x7f", "\x00")
MARKUP = "[link=https://evil.example]docs[/link] [blink]x[/blink]"


def assert_inert(text: str) -> None:
    for char in RAW:
        assert char not in text, f"{char!r} reached the terminal"


def test_control_characters_are_shown_and_newlines_and_tabs_kept() -> None:
    assert visible("a\x1b[2Jb\tc\nd\x9be\u202ef") == "a^[[2Jb\tc\nd\\u009be\\u202ef"
    assert visible("a\nb\r\tc", lines=False) == "a\\u000ab\\u000d\\u0009c"


def test_markup_is_escaped_after_the_controls_are_shown() -> None:
    assert markup("[bold]x[/bold]\x1b") == "\\[bold]x\\[/bold]^["


def test_table_cells_and_titles_print_hostile_text_inertly(capsys: pytest.CaptureFixture[str]) -> None:
    output.table(f"title{CLEAR}[red]", ["name", "description"], [(HOSTILE, MARKUP), ({"k": CLEAR}, [BIDI])])
    printed = capsys.readouterr().out
    assert_inert(printed)
    assert "^[]52;c;" in printed and "[link=https://evil.example]docs[/link]" in printed
    assert "title^[[2J[red]" in printed


def test_a_problem_line_shows_the_servers_detail_inertly() -> None:
    line = output.problem_line(RegistryError(f"no such model {HOSTILE}\nforged: line", status=404))
    assert_inert(line)
    assert "\n" not in line and "no such model a^[]52" in line


def test_json_output_stays_valid_json_with_every_control_escaped(capsys: pytest.CaptureFixture[str]) -> None:
    model = ModelPublic.model_validate(
        {
            "model_id": "m1",
            "team": "fraud",
            "name": "card",
            "description": HOSTILE,
            "created_at": "2026-01-01T00:00:00Z",
            "updated_at": "2026-01-01T00:00:00Z",
        }
    )
    output.print_json(model)
    printed = capsys.readouterr().out
    assert_inert(printed)
    assert json.loads(printed)["description"] == HOSTILE


def test_json_text_escapes_what_json_encoders_leave_raw_and_stays_the_same_document() -> None:
    document = json.dumps({"name": "café", "text": HOSTILE, "lines": "a\nb"}, ensure_ascii=False, indent=2)
    assert "\x9b" in document  # json.dumps leaves C1, DEL and bidi raw when writing UTF-8
    safe = json_text(document)
    assert_inert(safe)
    assert "café" in safe and json.loads(safe) == json.loads(document)


@contextmanager
def fake_registry(client: Any) -> Iterator[Any]:
    yield client


def test_a_card_renders_and_prints_its_markdown_inertly(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    markdown = f"# Card {CLEAR}\n\n{HOSTILE}\n\n{MARKUP}\n"
    client = SimpleNamespace(
        get_card=lambda *_, **__: SimpleNamespace(markdown=markdown),
        get_card_markdown=lambda *_, **__: markdown,
    )
    monkeypatch.setattr(browse, "registry", lambda _key, _consistency=None: fake_registry(client))
    browse.card("fraud", "card", version=None, markdown=False, as_json=False, api_key=None)
    browse.card("fraud", "card", version=None, markdown=True, as_json=False, api_key=None)
    printed = capsys.readouterr().out
    assert_inert(printed)
    assert printed.count("^[]52;c;") == 2


def test_an_alias_answer_prints_inertly(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    moved = SimpleNamespace(alias=f"champion{CLEAR}", version=f"1.0.0\n{BIDI}", previous_version=None)
    client = SimpleNamespace(set_alias=lambda *_: moved)
    monkeypatch.setattr(curate, "registry", lambda _key, _consistency=None: fake_registry(client))
    curate.set_alias("fraud", "card", "champion", "1.0.0", as_json=False, api_key=None)
    printed = capsys.readouterr().out
    assert_inert(printed)
    assert printed.count("\n") == 1


def test_exported_documents_escape_what_json_leaves_raw() -> None:
    document = SimpleNamespace(model_dump_json=lambda: json.dumps({"text": HOSTILE}, ensure_ascii=False))
    client = SimpleNamespace(stream_documents=lambda cursor: iter([document, StreamEnd(next_cursor="c1")]))
    out = io.StringIO()
    with Progress(console=None, disable=True) as progress:
        assert export.export_documents(client, None, out, progress) == "c1"  # type: ignore[arg-type]
    assert_inert(out.getvalue())
    assert json.loads(out.getvalue()) == {"text": HOSTILE}


def test_names_imported_from_mlflow_print_inertly(capsys: pytest.CaptureFixture[str]) -> None:
    model = ModelPlan(mlflow_name=HOSTILE, team="fraud", name="a-b", metadata={}, versions=(), aliases=(), lifecycle=())
    plan = ImportPlan(
        tracking_uri="http://mlflow.test",
        team="fraud",
        models=(model,),
        skipped=(Finding(HOSTILE, "version 1", f"bad {MARKUP}{CLEAR}"),),
    )
    outcome = ModelOutcome(mlflow_name=HOSTILE, name="a-b", sent=0, present=0, failed=[f"x {CLIPBOARD}"])
    importing._report(plan, [outcome], 1.0, as_json=False)
    importing._report(plan, [outcome], 1.0, as_json=True)
    captured = capsys.readouterr()
    assert_inert(captured.out + captured.err)
