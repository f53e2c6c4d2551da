"""Environment settings with defaults that make the demo work offline."""

import os
from pathlib import Path

import dagster as dg

SAMPLE_CORPUS = str(Path(__file__).resolve().parent.parent / "sample_data")
DEFAULT_DUCKDB_PATH = "data/sentence_topics.duckdb"


def sentences_path() -> str:
    """SENTENCES_PATH, or the bundled sample corpus."""
    return os.environ.get("SENTENCES_PATH") or SAMPLE_CORPUS


def duckdb_path() -> str:
    """DUCKDB_PATH, or the demo's warehouse."""
    return os.environ.get("DUCKDB_PATH") or DEFAULT_DUCKDB_PATH


def served() -> dict[str, str]:
    """Which corpus and warehouse these definitions serve (shown in the UI)."""
    return {"corpus (SENTENCES_PATH)": str(Path(sentences_path()).expanduser().resolve()),
            "warehouse (DUCKDB_PATH)": str(Path(duckdb_path()).expanduser().resolve())}


def env_or_default(name: str, default: str) -> str | dg.EnvVar:
    """dagster.EnvVar when the variable is set (shown as such in the UI), else the default."""
    return dg.EnvVar(name) if os.environ.get(name) else default


def env_choice(name: str, choices: tuple[str, ...]) -> str:
    """The environment variable `name`, lower-cased, checked against `choices` (the first is the default)."""
    value = os.environ.get(name, "").strip().lower() or choices[0]
    if value not in choices:
        raise ValueError(f"{name}='{value}' is not one of: {', '.join(choices)}.")
    return value


def partition_mode() -> str:
    """SENTENCE_PARTITIONS: "none" (one table from every file, the default), "files" (a partition per file) or
    "folders" (a partition per top-level folder, e.g. one landing folder per arrival date)."""
    return env_choice("SENTENCE_PARTITIONS", ("none", "files", "folders"))


def embedding_engine() -> str:
    """EMBEDDING_ENGINE: "local" (this process, the default) or "ray" (actors on a Ray cluster, via dagster-ray)."""
    return env_choice("EMBEDDING_ENGINE", ("local", "ray"))
