"""Static embeddings (Model2Vec): a table of token vectors distilled once from a sentence-transformer, so that
encoding is a tokenizer pass and a mean, with no forward pass. Hundreds of times faster on a CPU, at a measured
cost in quality (docs/benchmarks.md)."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
from filelock import FileLock

DEFAULT_CACHE_DIR = "~/.cache/sentence-topics/static"


def distilled_folder(cache_dir: str, source_identity: str, dims: int) -> Path:
    """Where the static model distilled from `source_identity` with `dims` PCA dimensions is kept."""
    name = re.sub(r"[^A-Za-z0-9_.@-]+", "--", source_identity)
    return Path(cache_dir).expanduser() / f"{name}-pca{dims}"


def distill_once(source: str, folder: Path, dims: int, device: str,
                 log: Callable[[str], None] = print) -> float | None:
    """Distill `source` (a sentence-transformer's folder or hub name) into `folder` unless it is there already;
    atomic and under a lock, so that warehouses sharing the cache distill it once. Seconds spent, or None."""
    if (folder / "config.json").exists():
        return None
    folder.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(folder) + ".lock"):
        if (folder / "config.json").exists():
            return None
        from model2vec.distill import distill

        log(f"distilling a static model from {source} into {folder} (once per machine; a forward pass per "
            f"vocabulary token, progress on stderr)")
        started = time.perf_counter()
        model = distill(model_name=source, pca_dims=dims, device=device)
        staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}-"))
        try:
            model.save_pretrained(str(staging))
            staging.chmod(0o755)  # mkdtemp's 0700 would hide it from the machine's other users
            os.replace(staging, folder)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        seconds = time.perf_counter() - started
        log(f"distilled in {seconds:.1f} s")
        return seconds


class StaticEncoder:
    """Encodes with a Model2Vec model: L2-normalized float32 vectors."""

    def __init__(self, name_or_folder: str):
        from model2vec import StaticModel

        looks_like_a_path = name_or_folder.startswith((".", "/", "~")) or name_or_folder.count("/") > 1
        if looks_like_a_path and not (Path(name_or_folder).expanduser() / "config.json").is_file():
            raise ValueError(f"STATIC_MODEL '{name_or_folder}' is not a Model2Vec model folder (no config.json "
                             f"there). Give a folder saved by model2vec, a hub name such as "
                             f"minishlab/potion-base-8M, or leave STATIC_MODEL unset to distill one from the model.")
        self.model: Any = StaticModel.from_pretrained(str(Path(name_or_folder).expanduser())
                                                      if looks_like_a_path else name_or_folder)

    @property
    def dimension(self) -> int:
        return int(self.model.dim)

    def encode(self, texts: list[str], batch_size: int = 1024) -> np.ndarray:
        vectors = np.asarray(self.model.encode(texts, batch_size=batch_size, show_progress_bar=False),
                             dtype=np.float32)
        return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
