"""Environment settings with defaults that make the demo work offline."""

import os
from pathlib import Path

import dagster as dg

SAMPLE_CORPUS = str(Path(__file__).resolve().parent.parent / "sample_data")
DEFAULT_DUCKDB_PATH = "data/sentence_topics.duckdb"


def sentences_path() -> str:
    """SENTENCES_PATH, or the bundled sample corpus."""
    return os.environ.get("SENTENCES_PATH") or SAMPLE_CORPUS


def env_or_default(name: str, default: str) -> str | dg.EnvVar:
    """dagster.EnvVar when the variable is set (shown as such in the UI), else the default."""
    return dg.EnvVar(name) if os.environ.get(name) else default


PARTITION_MODES = ("", "files")


def partition_mode() -> str:
    """SENTENCE_PARTITIONS: "" (one table from every file, the default) or "files" (one Dagster partition per file)."""
    mode = os.environ.get("SENTENCE_PARTITIONS", "").strip().lower()
    if mode not in PARTITION_MODES:
        raise ValueError(f"SENTENCE_PARTITIONS='{mode}' is not one of: unset (no partitions), files.")
    return mode


def embedding_engine() -> str:
    """EMBEDDING_ENGINE: "local" (this process, the default) or "ray" (actors on a Ray cluster, via dagster-ray)."""
    engine = os.environ.get("EMBEDDING_ENGINE", "local").strip().lower() or "local"
    if engine not in ("local", "ray"):
        raise ValueError(f"EMBEDDING_ENGINE='{engine}' is not one of: local, ray.")
    return engine
