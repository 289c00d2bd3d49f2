"""`snapshot` and the pytest plugin touch only the folder they are given: no write or read
through a link out of it, writes by atomic rename, and messages that echo a capped value."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from bedrock_rules.pytest_plugin import usage_documents
from bedrock_rules.resources import bundled_rules
from conftest import ROOT, SEED_DAY, run_cli

SECRET = "API_KEY=hunter2-do-not-print"


@pytest.fixture
def work(in_tmp) -> Path:
    """rules/, usage/ with two documents and their stored bills, and a secret outside usage/."""
    shutil.copytree(bundled_rules(), in_tmp / "rules")
    shutil.copytree(ROOT / "tests" / "snapshot", in_tmp / "usage")
    assert snapshot("--update").code == 0
    (in_tmp / "secrets.env").write_text(SECRET + "\n", encoding="utf-8")
    return in_tmp


def snapshot(*args: str):
    return run_cli("snapshot", "--at", SEED_DAY, "usage", "--rules", "rules", *args)


def test_update_does_not_write_through_a_linked_bill_to_a_file_outside(work):
    stored = work / "usage" / "monthly.bill.json"
    stored.unlink()
    stored.symlink_to(work / "secrets.env")
    for args in ((), ("--update",)):
        run = snapshot(*args)
        assert run.code == 2
        assert SECRET not in run.out + run.err
        assert "usage/monthly.bill.json: error[BU001]: a link to a file outside usage; links out of the folder are not followed" in run.err
    assert (work / "secrets.env").read_text(encoding="utf-8") == SECRET + "\n"


def test_update_does_not_create_a_file_through_a_dangling_link(work):
    stored = work / "usage" / "monthly.bill.json"
    stored.unlink()
    stored.symlink_to(work / "elsewhere.json")
    run = snapshot("--update")
    assert run.code == 2
    assert not (work / "elsewhere.json").exists()


def test_a_linked_folder_in_place_of_a_bill_is_refused(work):
    stored = work / "usage" / "monthly.bill.json"
    stored.unlink()
    (work / "outside").mkdir()
    stored.symlink_to(work / "outside")
    run = snapshot("--update")
    assert run.code == 2
    assert list((work / "outside").iterdir()) == []


@pytest.mark.parametrize("name", ["monthly.bill.json", "pipe.yaml"])
def test_a_fifo_is_refused_not_read(name, work):
    """A FIFO would block the read forever: it is refused as not a regular file."""
    path = work / "usage" / name
    path.unlink(missing_ok=True)
    os.mkfifo(path)
    run = snapshot("--update")
    assert run.code == 2
    assert f"usage/{name}: error[BU001]: not a regular file; only files are read and written" in run.err


def test_a_usage_document_linked_out_of_the_folder_is_not_read(work):
    (work / "usage" / "leak.yaml").symlink_to(work / "secrets.env")
    run = snapshot()
    assert run.code == 2
    assert SECRET not in run.out + run.err
    assert "usage/leak.yaml: error[BU001]: a link to a file outside usage; links out of the folder are not followed" in run.err


def test_a_link_inside_the_folder_is_read_and_replaced_not_written_through(work):
    usage = work / "usage"
    (usage / "copy.yaml").symlink_to("monthly.yaml")  # a link that stays in the folder
    run = snapshot("--update")
    assert run.code == 0, run.err
    assert (usage / "copy.bill.json").read_bytes() == (usage / "monthly.bill.json").read_bytes()


def test_update_writes_by_atomic_rename(work):
    """A stored bill hard-linked to a file elsewhere: the update replaces the folder's entry, never the other file."""
    stored = work / "usage" / "monthly.bill.json"
    stored.unlink()
    (work / "secrets.env").write_text("{}\n", encoding="utf-8")
    os.link(work / "secrets.env", stored)
    run = snapshot("--update")
    assert run.code == 0, run.err
    assert (work / "secrets.env").read_text(encoding="utf-8") == "{}\n"
    assert stored.read_text(encoding="utf-8").startswith('{\n  "schema": "bedrock-rules/bill/2",\n  "currency": "USD"')
    assert sorted(p.name for p in (work / "usage").iterdir()) == ["chat.bill.json", "chat.json", "monthly.bill.json", "monthly.yaml"]
    assert oct(stored.stat().st_mode & 0o777) == oct(0o666 & ~_umask())


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_messages_cap_how_much_of_a_value_they_echo(work):
    stored = work / "usage" / "monthly.bill.json"
    stored.write_text('{"currency": "USD", "items": [], "total": "' + "9" * 5000 + '"}\n', encoding="utf-8")
    run = snapshot()
    assert run.code == 1
    assert max(len(line) for line in run.out.splitlines()) < 300
    assert "  total: 9999" in run.out and "… (5,000 characters) -> 29469.684 USD" in run.out
    stored.write_text("x" * 100_000 + "\n", encoding="utf-8")  # not JSON: shown as a text diff
    run = snapshot()
    assert max(len(line) for line in run.out.splitlines()) < 300
    assert "-xxxx" in run.out and "… (100,001 characters)" in run.out


def test_hostile_values_in_a_stored_bill_are_shown_as_escapes(work):
    stored = work / "usage" / "monthly.bill.json"
    text = stored.read_text(encoding="utf-8").replace('"nightly summaries"', '"nightly\\ntotal: 0.01 USD\\u001b[2J"', 1)
    stored.write_text(text, encoding="utf-8")
    run = snapshot()
    assert run.code == 1
    assert "\x1b" not in run.out
    assert not [line for line in run.out.splitlines() if line.startswith("total")]
    assert "nightly\\ntotal: 0.01 USD\\x1b[2J" in run.out


def test_the_pytest_plugin_does_not_read_a_document_linked_out_of_the_folder(work):
    (work / "usage" / "leak.yaml").symlink_to(work / "secrets.env")
    with pytest.raises(pytest.fail.Exception) as failed:
        usage_documents("usage")
    assert SECRET not in str(failed.value)
    assert "usage/leak.yaml: error[BU001]: a link to a file outside usage; links out of the folder are not followed" in str(failed.value)
