"""Every environment variable Sentence Topics reads, its default and what it means, in one place. A value is read
when asked: at run time, or when the Definitions are built for the two that shape the asset graph
(SENTENCE_PARTITIONS, EMBEDDING_ENGINE); never at import. Resources take theirs as `dagster.EnvVar`, so the UI
shows which variable a value came from."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

SAMPLE_CORPUS = str(Path(__file__).resolve().parent / "sample_data")


@dataclass(frozen=True)
class Setting:
    name: str
    default: str
    help: str
    choices: tuple[str, ...] = ()

    def value(self) -> str:
        """The variable's value (lower-cased and checked when it has choices), or the default when unset or empty."""
        raw = os.environ.get(self.name, "").strip()
        value = (raw.lower() if self.choices else raw) or self.default
        if self.choices and value not in self.choices:
            raise ValueError(f"{self.name}='{raw}' is not one of: {', '.join(self.choices)}.")
        return value

    def is_set(self) -> bool:
        return bool(os.environ.get(self.name, "").strip())

    def resource_value(self) -> str | dg.EnvVar:
        """For a resource field: `dagster.EnvVar` when set (shown as such in the UI), else the default."""
        return dg.EnvVar(self.name) if self.is_set() else self.default

    def resource_int(self) -> int | dg.EnvVar:
        return dg.EnvVar.int(self.name) if self.is_set() else int(self.default)

    def resource_float(self) -> float | dg.EnvVar:
        return dg.EnvVar.float(self.name) if self.is_set() else float(self.default)


DUCKDB_PATH = Setting("DUCKDB_PATH", "data/sentence_topics.duckdb", "The warehouse file.")
SENTENCES_PATH = Setting("SENTENCES_PATH", SAMPLE_CORPUS, (
    "File, folder or glob of .txt/.csv/.tsv/.jsonl/.parquet (a `text` column, optional `label` and `timestamp`); "
    "the bundled sample corpus when unset."))
CLUSTER_WINDOW = Setting("CLUSTER_WINDOW", "", "A GLOB over sentences.source: only those files are clustered.")
SENTENCE_PARTITIONS = Setting("SENTENCE_PARTITIONS", "none", (
    "none: one table from every file; files: a partition per file; folders: a partition per top-level folder."),
    ("none", "files", "folders"))
EMBEDDING_MODEL = Setting("EMBEDDING_MODEL", "", "Model name or path; the bundled all-MiniLM-L6-v2 when unset.")
EMBEDDING_DEVICE = Setting("EMBEDDING_DEVICE", "auto", "auto, cpu, cuda or mps.")
EMBEDDING_BACKEND = Setting("EMBEDDING_BACKEND", "torch", "torch, onnx, onnx-int8, openvino or static.")
STATIC_MODEL = Setting("STATIC_MODEL", "", (
    "EMBEDDING_BACKEND=static: a Model2Vec model (folder or hub name); unset: distilled once from EMBEDDING_MODEL."))
STATIC_CACHE_DIR = Setting("STATIC_CACHE_DIR", "~/.cache/sentence-topics/static",
                           "Where distilled static models are kept, shared by every warehouse on the machine.")
STATIC_DIMS = Setting("STATIC_DIMS", "256", "PCA dimensions of a distilled static model.")
EMBEDDING_BATCH_SIZE = Setting("EMBEDDING_BATCH_SIZE", "0", "Texts per forward pass; 0: chosen for the device.")
EMBEDDING_EXPORT_DIR = Setting("EMBEDDING_EXPORT_DIR", "data/models", "Where exported CPU engines are kept.")
EMBEDDING_PIPELINE = Setting("EMBEDDING_PIPELINE", "auto", "Tokenization overlapped with encoding: auto, on, off.")
EMBEDDING_ENGINE = Setting("EMBEDDING_ENGINE", "local", "local: this process; ray: actors on a Ray cluster.",
                           ("local", "ray"))
RAY_ADDRESS = Setting("RAY_ADDRESS", "", "The Ray cluster to join; a local one when unset.")
RAY_EMBEDDING_WORKERS = Setting("RAY_EMBEDDING_WORKERS", "2", "Embedding actors on the Ray cluster.")
RAY_GPUS_PER_WORKER = Setting("RAY_GPUS_PER_WORKER", "0", "GPUs each embedding actor asks for.")
EMBEDDING_STAGING_DIR = Setting("EMBEDDING_STAGING_DIR", "data/staging", "Where Ray actors stage their vectors.")


def served() -> dict[str, str]:
    """Which corpus and warehouse these definitions serve (shown in the UI)."""
    return {"corpus (SENTENCES_PATH)": str(Path(SENTENCES_PATH.value()).expanduser().resolve()),
            "warehouse (DUCKDB_PATH)": str(Path(DUCKDB_PATH.value()).expanduser().resolve())}
