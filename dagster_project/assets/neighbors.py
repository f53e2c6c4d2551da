"""The nearest-neighbour index of the embeddings and what is read from it: `sentence_neighbors`, near-duplicates,
outliers."""

import hashlib
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pydantic
from filelock import FileLock

from ..core.neighbors import SHARD_SIZE, ShardedIndex, near_duplicate_groups, neighbour_chunks, outdated_by
from ..resources import DuckDBWarehouse, SentenceEmbedder
from ..resources.warehouse import EMBEDDING_CHUNK


class NeighborsConfig(dg.Config):
    k: int = pydantic.Field(default=10, description="Most similar other sentences kept per sentence.")
    near_duplicate_similarity: float = pydantic.Field(default=0.95, description=(
        "Cosine similarity from which two sentences are near-duplicates (`near_duplicates`)."))
    rebuild: bool = pydantic.Field(default=False, description="Build the index again from every embedding.")
    index_file_size: int = pydantic.Field(default=SHARD_SIZE, description=(
        "Most sentences per index file: one file is in memory at a time (about 1.2 KB a sentence), so memory stays "
        "bounded whatever the corpus; a larger corpus is kept in several files, each searched in turn."))


def index_path(database: str, model_key: str) -> Path:
    """Where the index of model_key's vectors lives: beside the DuckDB file, one file per model."""
    db = Path(database).expanduser().resolve()
    return db.with_name(f"{db.name}.neighbors-{hashlib.sha256(model_key.encode()).hexdigest()[:12]}.usearch")


def add_embeddings(index: ShardedIndex, warehouse: DuckDBWarehouse, model_key: str, ids: np.ndarray,
                   every: bool) -> None:
    """Add the embeddings of sentences `ids` to the index, a chunk at a time (memory: one chunk): all of the
    window's (`every`) in one streamed read, else by id."""
    chunks = warehouse.embedding_chunks(model_key) if every else (
        (ids[start:start + EMBEDDING_CHUNK], warehouse.embeddings_of(model_key, ids[start:start + EMBEDDING_CHUNK])[1])
        for start in range(0, len(ids), EMBEDDING_CHUNK))
    for keys, vectors in chunks:
        index.add(keys, vectors)


def texts_of(warehouse: DuckDBWarehouse, frame: pd.DataFrame) -> pd.DataFrame:
    texts = warehouse.query("SELECT sentence_id, text FROM sentences WHERE list_contains(?, sentence_id)",
                            [frame["sentence_id"].astype("int64").tolist()])
    return frame.merge(texts, on="sentence_id", how="left")


def update_index(warehouse: DuckDBWarehouse, model_key: str, path: Path, config: NeighborsConfig) -> dict:
    """Bring the index at `path` and the `sentence_neighbors` lists up to date with the window's sentences
    (add the new, remove the gone, search the lists that changed); what was done, for the metadata."""
    ids = warehouse.window_ids()
    dimensions = int(warehouse.query("SELECT len(embedding) AS d FROM embedding_cache WHERE model_key = ? LIMIT 1",
                                     [model_key])["d"].iloc[0]) if len(ids) else 0
    stored = warehouse.query("""SELECT sentence_id, min(similarity) AS kth, count(*) AS n FROM sentence_neighbors
                                WHERE model_key = ? GROUP BY 1""", [model_key]).set_index("sentence_id")
    index = ShardedIndex(path, dimensions, config.index_file_size, rebuild=config.rebuild or not len(ids))
    created = index.created
    why = ("rebuild asked" if config.rebuild else "no index for this model yet") if created else \
        "index kept, new sentences added"
    in_index = index.contains(ids) if len(index) else np.zeros(len(ids), bool)
    gone = np.setdiff1d(stored.index.to_numpy(np.int64), ids)
    if len(gone):
        index.remove(gone)
    add_embeddings(index, warehouse, model_key, ids[~in_index], every=not in_index.any())
    k = min(config.k, max(len(ids) - 1, 0))
    lists_kept = np.isin(ids, stored.index.to_numpy(np.int64)) & in_index
    if created or not len(stored) or int(stored["n"].max()) != k:
        fresh = ids  # every list (first build, or k or the corpus size below k changed)
    else:
        touched = warehouse.query(
            "SELECT DISTINCT sentence_id FROM sentence_neighbors WHERE model_key = ? AND list_contains(?, neighbor_id)",
            [model_key, gone.tolist()])["sentence_id"].to_numpy(np.int64) if len(gone) else np.zeros(0, np.int64)
        fresh = np.union1d(ids[~lists_kept], np.intersect1d(touched, ids))
    nothing = np.zeros(0, np.int64)
    entered = nothing  # the stored lists a new sentence now enters, known once the fresh lists are written

    def changes() -> Iterator[tuple[np.ndarray, pd.DataFrame | None]]:
        """Drop the fresh and gone lists, write the fresh ones a chunk at a time, then the same for the stored
        lists that a new sentence now enters."""
        nonlocal entered
        yield np.union1d(fresh, gone), None
        outdated = []
        for rows in neighbour_chunks(index, fresh if k else fresh[:0], k):
            if not created:
                outdated.append(np.setdiff1d(np.intersect1d(outdated_by(rows, stored["kth"]), ids), fresh))
            yield nothing, rows
        entered = np.unique(np.concatenate(outdated or [nothing]))
        yield entered, None
        for rows in neighbour_chunks(index, entered, k):
            yield nothing, rows

    search_started = time.perf_counter()
    warehouse.replace_neighbours(model_key, changes())
    search_seconds = time.perf_counter() - search_started
    index.save()  # with nothing left to index, no stale file stays for the next run
    for other in path.parent.glob(f"{Path(warehouse.database).name}.neighbors-*.usearch"):
        if not other.name.startswith(path.stem):  # an index of a model no longer used
            other.unlink()
    return {"index": f"built ({why})" if created else why, "index_sentences": len(index),
            "index_files": len(index.sizes),
            "added_to_index": int((~in_index).sum()), "removed_from_index": len(gone),
            "lists_searched": len(fresh) + len(entered), "lists_entered_by_new_sentences": len(entered),
            "k": k, "search_and_write_seconds": round(search_seconds, 3)}


@dg.asset(deps=["sentence_embeddings"], group_name="neighbors", kinds={"usearch", "duckdb"})
def sentence_neighbors(context: dg.AssetExecutionContext, config: NeighborsConfig, warehouse: DuckDBWarehouse,
                       embedder: SentenceEmbedder) -> dg.MaterializeResult:
    """Every sentence's k most similar other sentences in `sentence_neighbors` (model_key, sentence_id,
    neighbor_id, similarity), from an approximate nearest-neighbour index (USearch HNSW, half-precision vectors)
    kept beside the DuckDB file. New sentences are added to the index and get their lists, and the stored lists
    they now enter or whose neighbours left are searched again, without rebuilding it (a new model builds its
    own). Also `near_duplicates` (groups of sentences linked at near_duplicate_similarity or more) and the view
    `sentence_outliers` (each sentence's similarity to its k-th neighbour: the lowest are the most isolated).
    Louvain builds its graph from this table."""
    if config.k < 1 or not 0 < config.near_duplicate_similarity <= 1:
        raise dg.Failure(description=f"sentence_neighbors: k ({config.k}) must be at least 1 and "
                                     f"near_duplicate_similarity ({config.near_duplicate_similarity}) in (0, 1].",
                         allow_retries=False)
    started = time.perf_counter()
    model_key = embedder.model_key
    path = index_path(warehouse.database, model_key)
    with FileLock(f"{path}.lock", timeout=warehouse.lock_timeout_seconds):  # one run at a time grows the index
        done = update_index(warehouse, model_key, path, config)
    pairs = warehouse.neighbour_rows(model_key, config.k, "similarity >= ?", [config.near_duplicate_similarity])
    duplicates = near_duplicate_groups(pairs).assign(model_key=model_key)
    warehouse.replace_table("near_duplicates", duplicates)
    isolated = texts_of(warehouse, warehouse.query(
        "SELECT sentence_id, kth_similarity FROM sentence_outliers WHERE model_key = ? "
        "ORDER BY kth_similarity, sentence_id LIMIT 10", [model_key]))
    shown = texts_of(warehouse, duplicates.head(20)[["group_id", "sentence_id", "similarity"]])
    context.log.info(f"sentence_neighbors: {done['lists_searched']} lists searched, {len(duplicates)} "
                     f"sentences in near-duplicate groups")
    return dg.MaterializeResult(metadata={
        "dagster/row_count": int(warehouse.query("SELECT count(*) AS n FROM sentence_neighbors")["n"].iloc[0]),
        "index_file": dg.MetadataValue.path(str(path)),
        **done,
        "seconds": round(time.perf_counter() - started, 3),
        "near_duplicate_groups": int(duplicates["group_id"].nunique()) if len(duplicates) else 0,
        "near_duplicates": dg.MetadataValue.md(shown.round(3).to_markdown(index=False) if len(shown) else
                                               f"none at cosine >= {config.near_duplicate_similarity}"),
        "most_isolated": dg.MetadataValue.md(isolated.round(3).to_markdown(index=False) if len(isolated) else "none"),
    })
