"""Unsupervised domain adaptation of the embedding model on the corpus's own sentences (no labels).

Methods, as in the sentence-transformers unsupervised-learning guide, trained with its trainer:
- simcse: each sentence is its own positive, dropout is the noise, the rest of the batch the negatives
  (MultipleNegativesRankingLoss on (s, s) pairs);
- tsdae: a decoder tied to the encoder reconstructs each sentence from the embedding of a damaged copy
  (60% of words deleted) (DenoisingAutoEncoderLoss);
- ct: contrastive tension with in-batch negatives (ContrastiveTensionLossInBatchNegatives).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

METHODS = ("simcse", "tsdae", "ct")


class AdaptationError(ValueError):
    """The corpus or the parameters do not allow training; the message says what to do."""


def _doc(text: str, default: Any) -> Any:
    return field(default=default, metadata={"description": text})


@dataclass(frozen=True)
class AdaptationParams:
    method: str = _doc("tsdae, simcse or ct (contrastive tension with in-batch negatives); tsdae lost least in the "
                       "adaptation benchmark.", "tsdae")
    epochs: int = _doc("Passes over the training sentences.", 1)
    batch_size: int = _doc("Sentences per step (in-batch negatives: larger is better, memory allowing).", 32)
    learning_rate: float = _doc("AdamW learning rate.", 3e-5)
    max_sentences: int = _doc("Train on at most this many distinct sentences (a seeded sample).", 10_000)
    min_sentences: int = _doc("Refuse corpora with fewer distinct sentences than this.", 200)
    seed: int = _doc("Seed of the sample, the noise, the shuffling and dropout.", 0)


def training_sentences(texts: list[str], params: AdaptationParams) -> list[str]:
    """Distinct sentences, a seeded sample of at most max_sentences, in a stable order; refuses too few."""
    if params.method not in METHODS:
        raise AdaptationError(f"adaptation method '{params.method}' is not one of {', '.join(METHODS)}.")
    distinct = sorted(set(t for t in texts if t.strip()))
    if len(distinct) < max(params.min_sentences, 2 * params.batch_size):
        raise AdaptationError(
            f"the corpus has {len(distinct)} distinct sentences; {params.method} needs at least "
            f"{max(params.min_sentences, 2 * params.batch_size)} (min_sentences={params.min_sentences}, two batches "
            f"of batch_size={params.batch_size}) to learn anything. Add sentences, or lower min_sentences / batch_size.")
    if len(distinct) > params.max_sentences:
        distinct = sorted(random.Random(params.seed).sample(distinct, params.max_sentences))
    return distinct


def damaged(text: str, rng: random.Random, deletion: float = 0.6) -> str:
    """TSDAE's noise: delete each word with probability `deletion`, keeping at least one."""
    words = text.split()
    kept = [w for w in words if rng.random() >= deletion]
    return " ".join(kept) if kept else (rng.choice(words) if words else text)


def corpus_fingerprint(texts: list[str]) -> str:
    """Digest of the distinct sentences (order-free)."""
    digest = hashlib.sha256()
    for text in sorted(set(texts)):
        digest.update(text.encode("utf-8") + b"\0")
    return digest.hexdigest()[:16]


def adapted_folder(root: Path, base_identity: str, texts: list[str], params: AdaptationParams) -> Path:
    """Versioned folder: the base model, the corpus and the parameters name it."""
    key = hashlib.sha256(json.dumps([base_identity, corpus_fingerprint(texts), asdict(params)],
                                    sort_keys=True).encode()).hexdigest()[:12]
    return root / f"{base_identity.split('@')[0]}-{params.method}-{key}"


def train(base_model: str, texts: list[str], params: AdaptationParams, folder: Path, device: str = "cpu") -> dict:
    """Fine-tune `base_model` on the sentences and save it to `folder` (written aside, moved in when whole).
    Returns what happened: sentences, steps, seconds."""
    try:
        from datasets import Dataset
    except ImportError as err:
        raise AdaptationError("domain adaptation needs the training extras: pip install 'sentence-topics[adapt]' "
                              "(datasets, accelerate).") from err
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer import losses
    from sentence_transformers.sentence_transformer.trainer import SentenceTransformerTrainer
    from sentence_transformers.sentence_transformer.training_args import SentenceTransformerTrainingArguments
    from transformers import set_seed

    sentences = training_sentences(texts, params)
    set_seed(params.seed)  # CPU kernels are deterministic; torch's deterministic mode would cost 30x here
    model = SentenceTransformer(base_model, device=device)
    if params.method == "tsdae":
        rng = random.Random(params.seed)
        data = {"noisy": [damaged(s, rng) for s in sentences], "text": sentences}
        loss = losses.DenoisingAutoEncoderLoss(model, decoder_name_or_path=base_model, tie_encoder_decoder=True)
    else:
        data = {"anchor": sentences, "positive": sentences}
        loss = (losses.MultipleNegativesRankingLoss(model) if params.method == "simcse"
                else losses.ContrastiveTensionLossInBatchNegatives(model))
    folder.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        args = SentenceTransformerTrainingArguments(
            output_dir=str(work / "trainer"), num_train_epochs=params.epochs,
            per_device_train_batch_size=params.batch_size, learning_rate=params.learning_rate, seed=params.seed,
            data_seed=params.seed, save_strategy="no", report_to="none", logging_strategy="no",
            dataloader_drop_last=True, disable_tqdm=True, use_cpu=device == "cpu",
        )
        started = time.perf_counter()
        trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=Dataset.from_dict(data), loss=loss)
        output = trainer.train()
        seconds = time.perf_counter() - started
        shutil.rmtree(work / "trainer", ignore_errors=True)
        model.save(str(work / "model"))
        info = {"method": params.method, "params": asdict(params), "sentences": len(sentences),
                "corpus_fingerprint": corpus_fingerprint(texts), "steps": int(output.global_step),
                "train_seconds": round(seconds, 2), "base_model": base_model}
        (work / "model" / "adaptation.json").write_text(json.dumps(info, indent=2))
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(work / "model", folder)
        return info
    finally:
        shutil.rmtree(work, ignore_errors=True)
