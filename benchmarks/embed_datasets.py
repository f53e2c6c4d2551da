"""Fill the benchmark embedding cache for every labelled dataset (encodes only what is missing)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import dataset_names, embed, load_dataset  # noqa: E402
from dagster_project.resources import SentenceEmbedder  # noqa: E402

if __name__ == "__main__":
    embedder = SentenceEmbedder(device="cpu")
    for name in dataset_names():
        frame = load_dataset(name)
        print(name, len(frame), flush=True)
        embed(frame["text"].tolist(), embedder)
