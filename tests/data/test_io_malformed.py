"""Event folders with malformed files: a clear message or a row error, never a traceback."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from cli.main import app
from features.io import read_event_dir, write_event_dir
from features.store import IngestRejected


def _edit_csv(folder, table: str, line: int, edit) -> None:
    """Rewrite physical ``line`` (1 = the header) of ``table``'s CSV with ``edit(cells)``."""
    path = folder / f"{table}.csv"
    lines = path.read_text().splitlines()
    header = lines[0].split(",")
    lines[line - 1] = ",".join(edit(header, lines[line - 1].split(",")))
    path.write_text("\n".join(lines) + "\n")


def _amount(value: str):
    def edit(header, cells):
        cells[header.index("amount_cents")] = value
        return cells

    return edit


def test_an_integer_beyond_64_bits_in_a_csv_is_a_row_error(tmp_path, store, make_batch):
    """It ended in an OverflowError traceback while the folder was read."""
    write_event_dir(make_batch(), tmp_path, "csv")
    _edit_csv(tmp_path, "invoices", 3, _amount(str(2**70)))
    with pytest.raises(IngestRejected) as info:
        store.ingest(read_event_dir(tmp_path))
    errors = info.value.report.errors
    assert [(e.table, e.row, e.column, e.check) for e in errors] == [
        ("invoices", 1, "amount_cents", "integer")
    ]
    assert "beyond the 64-bit integer range" in errors[0].message


def test_a_csv_row_with_more_fields_than_its_header_names_file_and_line(tmp_path, make_batch):
    """pandas said "Error tokenizing data. C error: Expected 7 fields in line 3, saw 8"."""
    write_event_dir(make_batch(), tmp_path, "csv")
    _edit_csv(tmp_path, "payments", 3, lambda header, cells: [*cells, "extra"])
    with pytest.raises(ValueError, match=r"payments\.csv line 3") as info:
        read_event_dir(tmp_path)
    assert "fields, but the header names" in str(info.value)
    assert "tokenizing" not in str(info.value)


def test_the_cli_names_both_without_a_traceback(tmp_path, make_batch, monkeypatch):
    monkeypatch.setenv("TIJDIG_DATA_DIR", str(tmp_path / "state"))
    runner = CliRunner()
    big, wide = tmp_path / "big", tmp_path / "wide"
    for folder in (big, wide):
        write_event_dir(make_batch(), folder, "csv")
    _edit_csv(big, "invoices", 2, _amount(str(2**70)))
    _edit_csv(wide, "invoices", 4, lambda header, cells: [*cells, "x"])
    rejected = runner.invoke(app, ["ingest", str(big)])
    assert rejected.exit_code == 1 and isinstance(rejected.exception, SystemExit)
    assert "amount_cents" in rejected.output and "64-bit" in rejected.output
    unreadable = runner.invoke(app, ["ingest", str(wide)])
    assert unreadable.exit_code != 0 and isinstance(unreadable.exception, SystemExit)
    assert "invoices.csv line 4" in unreadable.output.replace("\n", " ")
