"""Helpers the tests share (importable as `support`: pytest puts this folder on the path with its conftest)."""

from dataclasses import dataclass

import pandas as pd

from dagster_project.core.readers import CHUNK_ROWS, open_corpus


@dataclass(frozen=True)
class Corpus:
    """Every sentence of a corpus read at once, and what ingestion dropped."""

    frame: pd.DataFrame
    files: list[str]
    empty_rows_dropped: int
    fingerprints: dict[str, str]


def read_corpus(spec: str, partition: str | None = None, chunk_rows: int = CHUNK_ROWS) -> Corpus:
    """Every part `open_corpus` reads, as one frame (the product stores them part by part)."""
    stream = open_corpus(spec, partition=partition, chunk_rows=chunk_rows)
    frame = pd.concat(list(stream), ignore_index=True)
    return Corpus(frame, stream.files, stream.empty_rows_dropped, stream.fingerprints)
