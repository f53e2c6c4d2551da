"""The DuckDB warehouse: one adapter to the file (`adapter.py`) and one store per concern, combined in one resource."""

from .adapter import WarehouseAdapter, WarehouseBusyError, parquet_files, sql_string
from .corpus import CorpusStore, source_scope
from .neighbours import NeighbourStore
from .topics import FAILED_FITS, TopicStore
from .vectors import EMBEDDING_CHUNK, VECTOR_READ_MEMORY, EmbeddingStore, vectors_sql


class DuckDBWarehouse(CorpusStore, EmbeddingStore, TopicStore, NeighbourStore, WarehouseAdapter):
    """DuckDB file holding every table of the data contract: the corpus, the embedding cache, the clusterings and
    their topics, the neighbour lists and the map, each store in its own module over one adapter to the file."""


__all__ = ["DuckDBWarehouse", "WarehouseBusyError", "EMBEDDING_CHUNK", "FAILED_FITS", "VECTOR_READ_MEMORY",
           "parquet_files", "source_scope", "sql_string", "vectors_sql"]
