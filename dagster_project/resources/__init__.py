"""Adapters to the outside world: the DuckDB warehouse and the embedding model."""

from .embedder import SentenceEmbedder
from .warehouse import DuckDBWarehouse

__all__ = ["DuckDBWarehouse", "SentenceEmbedder"]
