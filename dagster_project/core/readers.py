"""Read raw sentences from .txt/.csv/.tsv/.jsonl/.parquet files, a folder of them, or a glob."""

from __future__ import annotations

import glob
import json
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice
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


CHUNK_ROWS = 100_000  # rows per part: ingestion's memory is a part, not the corpus


def _decode_error(path: Path, err: UnicodeDecodeError) -> InputError:
    """The line of the first byte that is not UTF-8 (the file is read whole only here, on the way to an error)."""
    data = path.read_bytes()
    try:
        data.decode("utf-8-sig")
    except UnicodeDecodeError as whole:
        err = whole
    line = data[: err.start].count(b"\n") + 1
    return InputError(
        f"{path}: line {line} is not valid UTF-8 (byte {err.start}: {data[err.start:err.start + 1]!r}). "
        "Re-save the file as UTF-8."
    )


def _numbered(frame: pd.DataFrame, first_row: int) -> pd.DataFrame:
    return frame.assign(row=range(first_row, first_row + len(frame)))


def _txt_chunks(path: Path, chunk_rows: int) -> Iterator[pd.DataFrame]:
    first = 1
    with path.open(encoding="utf-8-sig", newline="") as f:  # parts end at a line break: splitlines as on the whole
        while part := "".join(islice(f, chunk_rows)):
            lines = part.splitlines()
            yield _numbered(pd.DataFrame({"text": lines, "label": None}), first)
            first += len(lines)


def _delimited_chunks(path: Path, sep: str, chunk_rows: int) -> Iterator[pd.DataFrame]:
    first = 1
    try:
        reader = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, encoding="utf-8-sig",
                             chunksize=chunk_rows)
        for frame in reader:
            yield _numbered(_with_text_column(path, frame), first)
            first += len(frame)
    except pd.errors.EmptyDataError:
        return
    except pd.errors.ParserError as err:
        raise InputError(f"{path}: not a well-formed {'TSV' if sep == chr(9) else 'CSV'} file ({err}).") from err


def _with_text_column(path: Path, frame: pd.DataFrame) -> pd.DataFrame:
    columns = {str(c).strip().lower(): c for c in frame.columns}
    if "text" not in columns:
        raise InputError(
            f"{path}: no 'text' column (columns found: {', '.join(map(str, frame.columns)) or 'none'}). "
            "Name the column holding the sentences 'text' (and an optional 'label' column)."
        )
    out = pd.DataFrame({"text": frame[columns["text"]].to_numpy(dtype=object)})
    out["label"] = frame[columns["label"]].to_numpy(dtype=object) if "label" in columns else None
    if "timestamp" in columns:
        out["timestamp"] = frame[columns["timestamp"]].to_numpy(dtype=object)
    return out


def _jsonl_chunks(path: Path, chunk_rows: int) -> Iterator[pd.DataFrame]:
    records: list[tuple] = []
    with path.open(encoding="utf-8-sig") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise InputError(f"{path}: line {number} is not valid JSON ({err.msg}). Fix or remove the "
                                 "line.") from err
            if not isinstance(record, dict) or "text" not in record:
                raise InputError(f"{path}: line {number} has no 'text' field. Each line must be an object like "
                                 '{"text": "...", "label": "..."}.')
            records.append((record["text"], record.get("label"), number, record.get("timestamp")))
            if len(records) == chunk_rows:
                yield pd.DataFrame(records, columns=["text", "label", "row", "timestamp"])
                records = []
    if records:
        yield pd.DataFrame(records, columns=["text", "label", "row", "timestamp"])


def _parquet_chunks(path: Path, chunk_rows: int) -> Iterator[pd.DataFrame]:
    import pyarrow.parquet as pq

    first = 1
    try:
        batches = pq.ParquetFile(path).iter_batches(batch_size=chunk_rows)
        for batch in batches:
            yield _numbered(_with_text_column(path, batch.to_pandas()), first)
            first += batch.num_rows
    except InputError:
        raise
    except Exception as err:  # pyarrow raises several types for corrupt files
        raise InputError(f"{path}: not a readable Parquet file ({err}).") from err


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


def read_file_chunks(path: Path, chunk_rows: int = CHUNK_ROWS) -> Iterator[pd.DataFrame]:
    """The file in parts of at most `chunk_rows` rows: columns text, label, row (1-based row or line number within
    the file), and timestamp when the file has one."""
    suffix = path.suffix.lower()
    readers = {".txt": lambda: _txt_chunks(path, chunk_rows),
               ".csv": lambda: _delimited_chunks(path, ",", chunk_rows),
               ".tsv": lambda: _delimited_chunks(path, "\t", chunk_rows),
               ".jsonl": lambda: _jsonl_chunks(path, chunk_rows),
               ".parquet": lambda: _parquet_chunks(path, chunk_rows)}
    if suffix not in readers:
        raise InputError(f"{path}: unsupported extension '{path.suffix}'. {HOW_TO_FIX_PATH}")
    try:
        yield from readers[suffix]()
    except UnicodeDecodeError as err:
        raise _decode_error(path, err) from err


def _check_text_is_string(path: Path, frame: pd.DataFrame) -> None:
    bad = frame["text"].map(lambda v: v is not None and not isinstance(v, str) and not pd.isna(v))
    if bad.any():
        first = frame.loc[bad.idxmax()]
        raise InputError(
            f"{path}: row {first['row']} field 'text' is {type(first['text']).__name__} "
            f"({first['text']!r}), not a string. Store the sentences as text."
        )


@dataclass
class CorpusStream:
    """Every file of a corpus, read in parts of at most `chunk_rows` rows: iterating yields the normalized parts (text,
    text_hash, source, label, row, timestamp: NaT when none is given) and counts the rows kept and dropped. A
    bad row stops the iteration with an InputError, as does a corpus with no sentence at the end."""

    spec: str
    named: dict[str, Path]  # source -> file
    fingerprints: dict[str, str]
    chunk_rows: int = CHUNK_ROWS
    rows: int = 0
    empty_rows_dropped: int = 0

    @property
    def files(self) -> list[str]:
        return [str(path) for path in self.named.values()]

    def __iter__(self) -> Iterator[pd.DataFrame]:
        self.rows = self.empty_rows_dropped = 0
        for source, path in self.named.items():
            for frame in read_file_chunks(path, self.chunk_rows):
                part = _normalized(path, source, frame)
                self.rows += len(part)
                self.empty_rows_dropped += len(frame) - len(part)
                if len(part):
                    yield part
        if not self.rows:
            raise InputError(
                f"SENTENCES_PATH '{self.spec}' holds no sentence: {len(self.named)} file(s) read, all rows empty. "
                "Point it at files with at least one non-blank sentence."
            )


def _normalized(path: Path, source: str, frame: pd.DataFrame) -> pd.DataFrame:
    """One part of a file: timestamps parsed, texts normalized and hashed, empty rows dropped."""
    _check_text_is_string(path, frame)
    frame = frame.assign(timestamp=parse_timestamps(path, frame), source=source)
    frame["text"] = frame["text"].map(lambda t: normalize_text(t) if isinstance(t, str) else "")
    frame["label"] = pd.Series([_label_as_text(v) for v in frame["label"]], index=frame.index, dtype=object)
    frame = frame.loc[frame["text"].ne("")].reset_index(drop=True)
    frame["text_hash"] = frame["text"].map(text_hash)
    return frame[["text", "text_hash", "source", "label", "row", "timestamp"]]


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


def open_corpus(spec: str, root: str | None = None, partition: str | None = None,
                chunk_rows: int = CHUNK_ROWS) -> CorpusStream:
    """Every file of `spec` (or only those of one `partition`: a file, or a folder), fingerprinted now, to be read
    in parts."""
    named = source_files(spec, root)
    if partition is not None:
        named = {source: path for source, path in named.items() if in_partition(source, partition)}
        if not named:
            raise InputError(f"Partition '{partition}' names no file under SENTENCES_PATH '{spec}'. Put the file "
                             "back, or delete the partition (the file sensor deletes it and its rows when its files "
                             "go).")
    fingerprints = {source: file_fingerprint(path) for source, path in named.items()}
    return CorpusStream(spec, named, fingerprints, chunk_rows)
