"""Read raw sentences from .txt/.csv/.tsv/.jsonl/.parquet files, a folder of them, or a glob."""

from __future__ import annotations

import glob
import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .text import normalize_text, text_hash

SUPPORTED_SUFFIXES = (".txt", ".csv", ".tsv", ".jsonl", ".parquet")
HOW_TO_FIX_PATH = (
    "Set SENTENCES_PATH to a file, a folder or a glob of "
    + "/".join(SUPPORTED_SUFFIXES)
    + " files."
)


class InputError(ValueError):
    """Bad input: the message names the file, the row or field, and what to do."""


def resolve_files(spec: str) -> list[Path]:
    """Expand a file, folder or glob into a sorted list of supported files."""
    path = Path(spec).expanduser()
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUPPORTED_SUFFIXES)
        if not files:
            raise InputError(f"Folder '{spec}' holds no {'/'.join(SUPPORTED_SUFFIXES)} file. {HOW_TO_FIX_PATH}")
        return files
    if path.is_file():
        if path.suffix.lower() not in SUPPORTED_SUFFIXES:
            raise InputError(
                f"File '{spec}' has the unsupported extension '{path.suffix}'. "
                f"Convert it to one of {', '.join(SUPPORTED_SUFFIXES)}, or rename a plain-text file to .txt."
            )
        return [path]
    matches = sorted(Path(p) for p in glob.glob(str(path), recursive=True))
    files = [p for p in matches if p.is_file() and p.suffix.lower() in SUPPORTED_SUFFIXES]
    if not files:
        raise InputError(f"SENTENCES_PATH '{spec}' matches no readable file. {HOW_TO_FIX_PATH}")
    return files


def _decode(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise InputError(
            f"{path}: line {line} is not valid UTF-8 (byte {err.start}: {data[err.start:err.start + 1]!r}). "
            "Re-save the file as UTF-8."
        ) from err


def _read_txt(path: Path) -> pd.DataFrame:
    lines = _decode(path).splitlines()
    return pd.DataFrame({"text": lines, "label": None, "row": range(1, len(lines) + 1)})


def _read_delimited(path: Path, sep: str) -> pd.DataFrame:
    import io

    text = _decode(path)
    if not text.strip():
        return pd.DataFrame({"text": [], "label": [], "row": []})
    try:
        frame = pd.read_csv(io.StringIO(text), sep=sep, dtype=str, keep_default_na=False)
    except pd.errors.ParserError as err:
        raise InputError(f"{path}: not a well-formed {'TSV' if sep == chr(9) else 'CSV'} file ({err}).") from err
    return _with_text_column(path, frame)


def _with_text_column(path: Path, frame: pd.DataFrame) -> pd.DataFrame:
    columns = {str(c).strip().lower(): c for c in frame.columns}
    if "text" not in columns:
        raise InputError(
            f"{path}: no 'text' column (columns found: {', '.join(map(str, frame.columns)) or 'none'}). "
            "Name the column holding the sentences 'text' (and an optional 'label' column)."
        )
    out = pd.DataFrame({"text": frame[columns["text"]].to_numpy(dtype=object)})
    out["label"] = frame[columns["label"]].to_numpy(dtype=object) if "label" in columns else None
    out["row"] = range(1, len(out) + 1)
    if "timestamp" in columns:
        out["timestamp"] = frame[columns["timestamp"]].to_numpy(dtype=object)
    return out


def _read_jsonl(path: Path) -> pd.DataFrame:
    texts, labels, rows, stamps = [], [], [], []
    for number, line in enumerate(_decode(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise InputError(f"{path}: line {number} is not valid JSON ({err.msg}). Fix or remove the line.") from err
        if not isinstance(record, dict) or "text" not in record:
            raise InputError(f"{path}: line {number} has no 'text' field. Each line must be an object like "
                             '{"text": "...", "label": "..."}.')
        texts.append(record["text"])
        labels.append(record.get("label"))
        stamps.append(record.get("timestamp"))
        rows.append(number)
    return pd.DataFrame({"text": texts, "label": labels, "row": rows, "timestamp": stamps})


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        frame = pd.read_parquet(path)
    except Exception as err:  # pyarrow raises several types for corrupt files
        raise InputError(f"{path}: not a readable Parquet file ({err}).") from err
    return _with_text_column(path, frame)


def parse_timestamps(path: Path, frame: pd.DataFrame) -> pd.Series:
    """The optional `timestamp` column as naive UTC datetimes (NaT where absent or blank), read as ISO 8601 (a date,
    or a date-time with or without a UTC offset); a value that does not parse names its file, row and value."""
    parsed = pd.Series(pd.NaT, index=frame.index, dtype="datetime64[ns]")
    if "timestamp" not in frame:
        return parsed
    values = frame["timestamp"].map(lambda v: (v.strip() or None) if isinstance(v, str) else v)
    given = values.notna()
    stamps = pd.to_datetime(values[given], format="ISO8601", utc=True, errors="coerce")
    if stamps.isna().any():
        index = stamps.index[stamps.isna()][0]
        raise InputError(
            f"{path}: row {frame.at[index, 'row']} field 'timestamp' is {frame.at[index, 'timestamp']!r}, not an "
            "ISO 8601 date or date-time (e.g. 2026-11-30 or 2026-11-30T14:05:00+01:00). Fix the value, or leave it "
            "blank to use the ingestion time."
        )
    parsed[given] = stamps.dt.tz_convert(None).astype("datetime64[ns]")
    return parsed


def read_file(path: Path) -> pd.DataFrame:
    """Columns text, label, row (1-based row or line number within the file), and timestamp when the file has
    one."""
    suffix = path.suffix.lower()
    if suffix == ".txt":
        return _read_txt(path)
    if suffix == ".csv":
        return _read_delimited(path, ",")
    if suffix == ".tsv":
        return _read_delimited(path, "\t")
    if suffix == ".jsonl":
        return _read_jsonl(path)
    if suffix == ".parquet":
        return _read_parquet(path)
    raise InputError(f"{path}: unsupported extension '{path.suffix}'. {HOW_TO_FIX_PATH}")


def _check_text_is_string(path: Path, frame: pd.DataFrame) -> None:
    bad = frame["text"].map(lambda v: v is not None and not isinstance(v, str) and not pd.isna(v))
    if bad.any():
        first = frame.loc[bad.idxmax()]
        raise InputError(
            f"{path}: row {first['row']} field 'text' is {type(first['text']).__name__} "
            f"({first['text']!r}), not a string. Store the sentences as text."
        )


@dataclass(frozen=True)
class Corpus:
    """Normalized sentences plus what ingestion dropped."""

    frame: pd.DataFrame  # text, text_hash, source, label, row, timestamp (NaT: none given)
    files: list[str]
    empty_rows_dropped: int
    fingerprints: dict[str, str]  # source -> file_fingerprint, taken before the file was read


def file_fingerprint(path: Path) -> str:
    """Size and modification time: what tells a changed file from one already read."""
    stat = path.stat()
    return f"{stat.st_size}|{stat.st_mtime_ns}"


def _label_as_text(value: object) -> str | None:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    text = normalize_text(str(value))
    return text or None


def source_files(spec: str, root: str | None = None) -> dict[str, Path]:
    """Every file of `spec` by its `source` name: the path relative to `root` (by default `spec` when it is a
    folder), else the path as given."""
    base = Path(root) if root else (Path(spec) if Path(spec).is_dir() else None)
    return {str(path.relative_to(base)) if base and path.is_relative_to(base) else str(path): path
            for path in resolve_files(spec)}


def partition_key(source: str, by_folder: bool) -> str:
    """The partition of a `source` file: the file itself, or its top-level folder (the file when at the top)."""
    return source.split("/", 1)[0] if by_folder else source


def in_partition(source: str, partition: str) -> bool:
    """Whether `source` belongs to `partition` (a file's own name, or a folder above it)."""
    return source == partition or source.startswith(f"{partition}/")


def read_corpus(spec: str, root: str | None = None, partition: str | None = None) -> Corpus:
    """Read every file of `spec` (or only those of one `partition`: a file, or a folder), normalize texts, drop
    empty rows, hash texts."""
    named = source_files(spec, root)
    if partition is not None:
        named = {source: path for source, path in named.items() if in_partition(source, partition)}
        if not named:
            raise InputError(f"Partition '{partition}' names no file under SENTENCES_PATH '{spec}'. Put the file "
                             "back, or delete the partition (the file sensor deletes it and its rows when its files "
                             "go).")
    files = list(named.values())
    fingerprints = {source: file_fingerprint(path) for source, path in named.items()}
    frames = []
    for source, path in named.items():
        frame = read_file(path)
        _check_text_is_string(path, frame)
        frame["timestamp"] = parse_timestamps(path, frame)
        frame["source"] = source
        frames.append(frame)
    frame = pd.concat(frames, ignore_index=True)
    frame["text"] = frame["text"].map(lambda t: normalize_text(t) if isinstance(t, str) else "")
    frame["label"] = pd.Series([_label_as_text(v) for v in frame["label"]], index=frame.index, dtype=object)
    empty = frame["text"].eq("")
    frame = frame.loc[~empty].reset_index(drop=True)
    if frame.empty:
        raise InputError(
            f"SENTENCES_PATH '{spec}' holds no sentence: {len(files)} file(s) read, all rows empty. "
            "Point it at files with at least one non-blank sentence."
        )
    frame["text_hash"] = frame["text"].map(text_hash)
    return Corpus(
        frame=frame[["text", "text_hash", "source", "label", "row", "timestamp"]],
        files=[str(p) for p in files],
        empty_rows_dropped=int(empty.sum()),
        fingerprints=fingerprints,
    )
