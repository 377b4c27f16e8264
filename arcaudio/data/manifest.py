"""Dataset manifests: which audio files to train on, with their captions.

Two formats, chosen by suffix:

- CSV (`.csv`): a header row with at least `path` and `caption`; optional `seconds` (the file's duration, a number);
  any other columns are kept as strings.
- JSON Lines (`.jsonl`, `.ndjson`): one object per line with at least `path` and `caption` (strings); optional
  `seconds` (a number); any other fields (e.g. `attributes`) are kept as they are. Blank lines are ignored.

Relative paths are relative to the manifest's folder. Every entry comes back as a dict with `path` (an absolute
path, as a string), `caption` (stripped, non-empty), `seconds` (float) if given, and the other fields.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

REQUIRED = ("path", "caption")
CSV_SUFFIXES = (".csv",)
JSONL_SUFFIXES = (".jsonl", ".ndjson")


class ManifestError(ValueError):
    """A malformed manifest; the message names the file and, for a bad entry, its line number."""


def read_manifest(path: str | Path) -> list[dict[str, Any]]:
    """Read a CSV or JSONL manifest into a list of entries (see the module docstring).

    Raises:
        FileNotFoundError: if the manifest does not exist.
        ManifestError: for an unknown suffix, missing columns, malformed rows, empty paths or captions, a
            non-numeric `seconds`, or a manifest without entries; naming the line.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"manifest {str(path)!r} does not exist")
    suffix = path.suffix.lower()
    if suffix in CSV_SUFFIXES:
        rows = _read_csv(path)
    elif suffix in JSONL_SUFFIXES:
        rows = _read_jsonl(path)
    else:
        raise ManifestError(f"manifest {str(path)!r}: unknown format {path.suffix!r}; expected one of "
                            f"{list(CSV_SUFFIXES + JSONL_SUFFIXES)}")
    root = path.resolve().parent
    entries = [_entry(path, line, row, root) for line, row in rows]
    if not entries:
        raise ManifestError(f"manifest {str(path)!r} holds no entries")
    return entries


def _read_csv(path: Path) -> list[tuple[int, dict[str, Any]]]:
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        try:
            header = next(reader)
        except StopIteration:
            raise ManifestError(f"manifest {str(path)!r} is empty; expected a header row with columns "
                                f"{list(REQUIRED)}") from None
        except csv.Error as err:
            raise ManifestError(f"{str(path)!r} line 1: malformed CSV header: {err}") from err
        header = [h.strip() for h in header]
        missing = [c for c in REQUIRED if c not in header]
        if missing:
            raise ManifestError(f"{str(path)!r} line 1: the header lacks column(s) {missing}; it has {header} "
                                f"and needs at least {list(REQUIRED)}")
        duplicated = sorted({h for h in header if header.count(h) > 1})
        if duplicated:
            raise ManifestError(f"{str(path)!r} line 1: duplicated column(s) {duplicated}")
        rows = []
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                break
            except csv.Error as err:
                raise ManifestError(f"{str(path)!r} line {reader.line_num}: malformed CSV: {err}") from err
            if not cells or all(not c.strip() for c in cells):
                continue
            if len(cells) != len(header):
                raise ManifestError(f"{str(path)!r} line {reader.line_num}: expected {len(header)} fields "
                                    f"({', '.join(header)}), got {len(cells)}")
            row = dict(zip(header, cells))
            if row.get("seconds", None) is not None and not row["seconds"].strip():
                del row["seconds"]  # an empty cell: duration unknown
            rows.append((reader.line_num, row))
    return rows


def _read_jsonl(path: Path) -> list[tuple[int, dict[str, Any]]]:
    rows = []
    with open(path, encoding="utf-8-sig") as f:
        for line_no, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as err:
                raise ManifestError(f"{str(path)!r} line {line_no}: invalid JSON: {err}") from err
            if not isinstance(obj, dict):
                raise ManifestError(f"{str(path)!r} line {line_no}: expected a JSON object, got "
                                    f"{type(obj).__name__}")
            missing = [k for k in REQUIRED if k not in obj]
            if missing:
                raise ManifestError(f"{str(path)!r} line {line_no}: missing field(s) {missing}; each line needs at "
                                    f"least {list(REQUIRED)}")
            rows.append((line_no, obj))
    return rows


def _entry(path: Path, line: int, row: dict[str, Any], root: Path) -> dict[str, Any]:
    where = f"{str(path)!r} line {line}"
    for key in REQUIRED:
        if not isinstance(row[key], str):
            raise ManifestError(f"{where}: {key!r} must be a string, got {type(row[key]).__name__}")
    file, caption = row["path"].strip(), row["caption"].strip()
    if not file:
        raise ManifestError(f"{where}: empty path")
    if not caption:
        raise ManifestError(f"{where}: empty caption for {file!r}")
    entry = dict(row)
    full = Path(file).expanduser()
    entry["path"] = str(full if full.is_absolute() else root / full)
    entry["caption"] = caption
    if entry.get("seconds", 0) is None:
        del entry["seconds"]  # null: duration unknown
    if "seconds" in entry:
        seconds = entry["seconds"]
        try:
            if isinstance(seconds, bool):
                raise TypeError
            seconds = float(seconds)
        except (TypeError, ValueError):
            raise ManifestError(f"{where}: 'seconds' must be a number, got {seconds!r}") from None
        if not seconds >= 0 or seconds == float("inf"):
            raise ManifestError(f"{where}: 'seconds' must be finite and >= 0, got {seconds}")
        entry["seconds"] = seconds
    return entry
