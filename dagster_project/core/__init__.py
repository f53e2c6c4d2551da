"""Pure logic of Sentence Topics: no Dagster, no database, no model. Arrays in, arrays and frames out, computed
with numpy, scipy and scikit-learn; where a caller passes a GPU device, the same math runs on torch tensors
(`community.py`, `metrics.py`, `torch_kmeans.py` import torch inside the functions that use it). Loading, running
and training a model belong to `resources/` (the embedder, the adaptation trainer)."""
