"""Helpers the tests share (importable as `support`: pytest puts this folder on the path with its conftest)."""

import importlib
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from dagster_project.core.readers import CHUNK_ROWS, open_corpus

DATASETS = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"


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


def require(module: str, extra: str) -> None:
    """Fail (never skip) a test whose optional extra is not installed: `make test-extras` installs them."""
    try:
        importlib.import_module(module)
    except ImportError as err:
        pytest.fail(f"{module} is not installed ({err}): install the `{extra}` extra, or run `make test-extras`",
                    pytrace=False)


def dataset(name: str) -> pd.DataFrame:
    """A labeled dataset from ../shared/datasets; the test fails (never skips) when it is absent."""
    path = DATASETS / name / "data.csv"
    if not path.exists():
        pytest.fail(f"{path} not found: the shared datasets sit beside the project checkout (../shared/datasets)",
                    pytrace=False)
    return pd.read_csv(path, keep_default_na=False)
