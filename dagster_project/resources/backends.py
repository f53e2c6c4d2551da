"""CPU inference engines for the embedding model: ONNX Runtime and OpenVINO, fp32 or int8.

sentence-transformers reaches these engines through optimum, whose ONNX and OpenVINO packages pin
transformers below 4.58 and 5.6 and so cannot be installed beside sentence-transformers 6. The same
graph is exported here from the loaded model with torch.onnx, int8-quantized with ONNX Runtime's
dynamic quantization (what optimum's quantizer calls) and stored in sentence-transformers' folder
layout, so the files also load with its own backends where those install.
"""

from __future__ import annotations

import functools
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

import numpy as np
from filelock import FileLock

BACKENDS = ("torch", "onnx", "onnx-int8", "openvino")
POOLING_MODES = ("mean", "cls", "max")


@functools.cache
def int8_flavour() -> str:
    """avx512_vnni where the CPU multiplies u8 x s8 without saturation, else avx2 (7-bit weights)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "avx2"
    return "avx512_vnni" if "avx512_vnni" in flags or "avx_vnni" in flags else "avx2"


def precision(backend: str) -> str:
    """Numeric format of an exported engine: fp32, or qint8_<flavour> for onnx-int8."""
    return f"qint8_{int8_flavour()}" if backend == "onnx-int8" else "fp32"


def model_file(backend: str) -> str:
    return {
        "onnx": "onnx/model.onnx",
        "onnx-int8": f"onnx/model_{precision(backend)}.onnx",
        "openvino": "openvino/openvino_model.xml",
    }[backend]


class BackendError(ValueError):
    """The model cannot run on the chosen backend."""


def check_exportable(st_model: Any, backend: str) -> tuple[str, list[str]]:
    """Pooling mode and tokenizer inputs of a Transformer + Pooling (+ Normalize) model, else BackendError."""
    kinds = [type(module).__name__ for module in st_model]
    if kinds[:2] != ["Transformer", "Pooling"] or any(kind != "Normalize" for kind in kinds[2:]):
        raise BackendError(
            f"EMBEDDING_BACKEND={backend} runs Transformer + Pooling (+ Normalize) models; this model has "
            f"{' + '.join(kinds)}. Use EMBEDDING_BACKEND=torch for it."
        )
    mode = st_model[1].get_config_dict()["pooling_mode"]
    if mode not in POOLING_MODES:
        raise BackendError(f"EMBEDDING_BACKEND={backend} supports pooling {POOLING_MODES}, not '{mode}'; use torch.")
    inputs = [name for name in ("input_ids", "attention_mask", "token_type_ids") if name in st_model.tokenizer("a")]
    return mode, inputs


def export(st_model: Any, folder: Path, backend: str) -> Path:
    """The backend's model file in `folder`, exported (once, atomically, under a lock) if missing."""
    target = folder / model_file(backend)
    if target.exists():
        return target
    source = export(st_model, folder, "onnx") if backend != "onnx" else None  # the others derive from it
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(folder / ".export.lock")):
        if not target.exists():
            EXPORTERS[backend](st_model, source, target)
    return target


def _atomic(target: Path, write: Callable[[Path], None]) -> None:
    """Write into a temporary folder beside `target`, then move every file in by rename."""
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        staged = Path(tmp) / target.name
        write(staged)
        for path in sorted(Path(tmp).iterdir(), key=lambda p: p == staged):  # the main file last
            os.replace(path, target.parent / path.name)


def _export_onnx(st_model: Any, _: None, target: Path) -> None:
    import torch

    _, inputs = check_exportable(st_model, "onnx")
    transformer = st_model[0].auto_model.eval().float().to("cpu")

    class TokenEmbeddings(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.transformer = transformer

        def forward(self, *tensors):
            return self.transformer(**dict(zip(inputs, tensors))).last_hidden_state

    example = st_model.tokenizer(["an example sentence", "a second, somewhat longer example sentence"],
                                 padding=True, return_tensors="pt")
    dynamic = {name: {0: "batch", 1: "sequence"} for name in inputs}

    def write(path: Path) -> None:
        with torch.no_grad():
            torch.onnx.export(
                TokenEmbeddings(), tuple(example[name] for name in inputs), str(path), input_names=inputs,
                output_names=["token_embeddings"], dynamic_axes={**dynamic, "token_embeddings": {0: "batch", 1: "sequence"}},
                opset_version=17, dynamo=False,
            )

    _atomic(target, write)


def _export_onnx_int8(_: Any, source: Path, target: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # The matrix products only (a quantized embedding table costs quality and saves no time), but not the
    # feed-forward down-projections, whose inputs carry the outliers that int8 rounds away (measured: Spearman
    # of pair similarities 0.989 -> 0.994 for 17% of the time). Signed per-channel weights, 7-bit on CPUs
    # without VNNI so that AVX2's u8 x s8 multiply-add cannot saturate.
    options = {"weight_type": QuantType.QInt8, "per_channel": True, "reduce_range": int8_flavour() == "avx2",
               "op_types_to_quantize": ["MatMul"], "nodes_to_exclude": down_projections(source),
               "extra_options": {"DefaultTensorType": 1}}  # 1 = FLOAT, for tensors shape inference cannot type
    _atomic(target, lambda path: quantize_dynamic(source, path, **options))


def down_projections(path: Path) -> list[str]:
    """Names of the MatMul nodes whose weight maps a wider input to a narrower output (1536 -> 384 in MiniLM)."""
    import onnx

    graph = onnx.load(str(path)).graph
    shapes = {tensor.name: tuple(tensor.dims) for tensor in graph.initializer}
    return [node.name for node in graph.node if node.op_type == "MatMul"
            and any(len(shapes.get(name, ())) == 2 and shapes[name][0] > shapes[name][1] for name in node.input)]


def _export_openvino(_: Any, source: Path, target: Path) -> None:
    import openvino as ov

    _atomic(target, lambda path: ov.save_model(ov.convert_model(source), str(path), compress_to_fp16=False))


EXPORTERS = {"onnx": _export_onnx, "onnx-int8": _export_onnx_int8, "openvino": _export_openvino}


class ExportedEncoder:
    """Encodes like SentenceTransformer.encode (length-sorted batches, pooling, L2 norm) on an exported graph."""

    def __init__(self, st_model: Any, folder: Path, backend: str):
        self.pooling, self.inputs = check_exportable(st_model, backend)
        self.tokenizer = st_model.tokenizer
        self.max_length = st_model.max_seq_length
        path = export(st_model, folder, backend)
        self.run = _onnxruntime_runner(path) if backend.startswith("onnx") else _openvino_runner(path)

    def encode(self, texts: list[str], batch_size: int) -> np.ndarray:
        order = np.argsort([-len(text) for text in texts], kind="stable")
        out = np.empty((len(texts), 0), dtype=np.float32)
        for start in range(0, len(texts), batch_size):
            rows = order[start : start + batch_size]
            batch = self.tokenizer([texts[i] for i in rows], padding=True, truncation=True,
                                   max_length=self.max_length, return_tensors="np")
            tokens = self.run({name: batch[name].astype(np.int64) for name in self.inputs})
            pooled = pool(tokens, batch["attention_mask"], self.pooling)
            if out.shape[1] == 0:
                out = np.empty((len(texts), pooled.shape[1]), dtype=np.float32)
            out[rows] = pooled
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-12)


def pool(tokens: np.ndarray, mask: np.ndarray, mode: str) -> np.ndarray:
    """Sentence vectors from token vectors, as sentence-transformers' Pooling module computes them."""
    if mode == "cls":
        return tokens[:, 0]
    weights = mask[..., None].astype(tokens.dtype)
    if mode == "max":
        return np.where(weights > 0, tokens, -1e9).max(axis=1)
    return (tokens * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)


def _onnxruntime_runner(path: Path) -> Callable[[dict], np.ndarray]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return lambda feeds: session.run(None, feeds)[0]


def _openvino_runner(path: Path) -> Callable[[dict], np.ndarray]:
    import openvino as ov

    compiled = ov.Core().compile_model(str(path), "CPU", {"PERFORMANCE_HINT": "LATENCY"})
    request = compiled.create_infer_request()
    return lambda feeds: request.infer(feeds)[0]
