import os
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from dagster_project.settings import SAMPLE_CORPUS
from dagster_project.resources import DuckDBWarehouse, SentenceEmbedder

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")



@pytest.fixture(scope="session")
def embedder() -> SentenceEmbedder:
    """The real bundled all-MiniLM-L6-v2 on the CPU, loaded once per test session."""
    model = SentenceEmbedder(device="cpu")
    model.load()
    return model


@pytest.fixture(scope="session")
def sample_corpus() -> pd.DataFrame:
    return pd.read_csv(Path(SAMPLE_CORPUS) / "sample_corpus.csv")


@pytest.fixture(scope="session")
def sample_embeddings(embedder, sample_corpus) -> np.ndarray:
    return embedder.encode(sample_corpus["text"].tolist())


@pytest.fixture
def warehouse(tmp_path) -> DuckDBWarehouse:
    return DuckDBWarehouse(database=str(tmp_path / "warehouse.duckdb"))


@pytest.fixture
def materialize_all(embedder):
    """materialize(db, selection=None): a real in-process run of the project's assets and checks."""
    from dagster_project.definitions import build_assets

    def run(db: Path, selection=None) -> dg.ExecuteInProcessResult:
        return dg.materialize(
            build_assets(),
            resources={"warehouse": DuckDBWarehouse(database=str(db)), "embedder": embedder},
            selection=selection,
            raise_on_error=False,
        )

    return run
