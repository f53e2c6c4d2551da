"""Encoding with the host work hidden behind the model: tokenization runs in worker threads (each with its own
copy of the fast tokenizer) while the device computes the previous batch; batches are length-sorted, copied from
pinned memory without blocking, and the vectors stay on the device until one copy back at the end.

`SentenceTransformer.encode` tokenizes, pads, copies and synchronizes batch by batch in one Python thread; on a
GPU that host work, not the model, sets the pace.
"""

from __future__ import annotations

import copy
import os
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np


def pipelinable(st_model: Any) -> bool:
    """True when the model's first module is a text Transformer whose tokenizer can be called directly."""
    return hasattr(st_model[0], "max_seq_length") and getattr(st_model, "tokenizer", None) is not None


class PipelinedEncoder:
    """Encodes like SentenceTransformer.encode (normalized sentence embeddings) with tokenization overlapped."""

    def __init__(self, st_model: Any, workers: int = 0, prefetch: int = 0):
        self.model = st_model
        self.max_length = st_model[0].max_seq_length
        self.lower_case = bool(getattr(st_model[0], "do_lower_case", False))
        self.workers = workers or max(1, min(8, (os.cpu_count() or 2) - 1))
        self.prefetch = prefetch or 2 * self.workers
        self._local = threading.local()

    def _tokenizer(self) -> Any:
        """This thread's own tokenizer: a shared fast tokenizer may not be called from two threads at once."""
        if not hasattr(self._local, "tokenizer"):
            self._local.tokenizer = copy.deepcopy(self.model.tokenizer)
        return self._local.tokenizer

    def _features(self, texts: list[str], pin: bool) -> dict[str, Any]:
        if self.lower_case:
            texts = [text.lower() for text in texts]
        features = self._tokenizer()(texts, padding=True, truncation="longest_first", max_length=self.max_length,
                                     return_tensors="pt")
        return {name: tensor.pin_memory() if pin else tensor for name, tensor in features.items()}

    def encode(self, texts: list[str], batch_size: int) -> np.ndarray:
        import torch

        device = self.model.device
        pin = device.type == "cuda"
        order = np.argsort([-len(text) for text in texts], kind="stable")
        batches = [order[start : start + batch_size] for start in range(0, len(texts), batch_size)]
        out: Any = None
        with ThreadPoolExecutor(self.workers, thread_name_prefix="tokenize") as pool, torch.inference_mode():
            pending: deque = deque()
            upcoming = iter(batches)
            for rows in upcoming:
                pending.append((rows, pool.submit(self._features, [texts[i] for i in rows], pin)))
                if len(pending) >= self.prefetch:
                    break
            while pending:
                rows, future = pending.popleft()
                nxt = next(upcoming, None)
                if nxt is not None:
                    pending.append((nxt, pool.submit(self._features, [texts[i] for i in nxt], pin)))
                features = {name: t.to(device, non_blocking=True) for name, t in future.result().items()}
                features["modality"] = "text"
                vectors = self.model(features)["sentence_embedding"].float()
                vectors = torch.nn.functional.normalize(vectors, p=2, dim=1)
                if out is None:
                    out = torch.empty((len(texts), vectors.shape[1]), dtype=torch.float32, device=device)
                out[torch.as_tensor(rows, device=device)] = vectors
        if out is None:
            return np.zeros((0, 0), dtype=np.float32)
        return out.cpu().numpy()
