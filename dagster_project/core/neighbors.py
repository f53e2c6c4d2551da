"""Approximate nearest neighbours of the sentence embeddings: a USearch HNSW index (the library DuckDB's `vss`
extension is built on; chosen by measurement, see docs/benchmarks.md), kept on disk beside the warehouse and
grown with new sentences, and what is read from it: each sentence's k most similar others, near-duplicate groups."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

CONNECTIVITY = 16  # graph edges per node (HNSW's M)
EXPANSION_ADD = 128  # candidates while inserting (efConstruction)
EXPANSION_SEARCH = 64  # candidates while searching (ef): recall@10 0.99 on 100,000 real vectors
EXACT_SEARCH_UP_TO = 20_000  # an index this small is searched exactly (every vector scored): at most seconds
SEARCH_CHUNK = 65_536  # query rows at a time: memory is one chunk of results, whatever the corpus


def threads() -> int:
    return os.cpu_count() or 1


def new_index(dimensions: int):
    """An empty cosine HNSW index holding half-precision vectors (half the memory of float32, same recall)."""
    from usearch.index import Index

    return Index(ndim=dimensions, metric="cos", dtype="f16", connectivity=CONNECTIVITY,
                 expansion_add=EXPANSION_ADD, expansion_search=EXPANSION_SEARCH)


def open_index(path: Path, dimensions: int):
    """The index saved at `path`, or None when there is none or it holds vectors of another size."""
    from usearch.index import Index

    if not path.exists():
        return None
    index = Index.restore(str(path))
    if index is None or index.ndim != dimensions:
        return None
    index.expansion_search = EXPANSION_SEARCH
    return index


def save_index(index, path: Path) -> None:
    """Write the index next to its final place, then move it there, so a reader never sees half a file."""
    partial = path.with_name(path.name + ".partial")
    index.save(str(partial))
    partial.replace(path)


def add_vectors(index, keys: np.ndarray, vectors: np.ndarray) -> None:
    if len(keys):
        index.add(np.asarray(keys, dtype=np.uint64), np.ascontiguousarray(vectors, dtype=np.float32),
                  threads=threads())


@dataclass(frozen=True)
class Neighbours:
    """Each row's k most similar other rows (-1 where fewer were found), most similar first."""

    indices: np.ndarray  # (n, k) int64
    similarities: np.ndarray  # (n, k) float32


def batch_matches(matches, count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(keys, distances, found per row) of a search, as (rows, count) arrays: USearch answers a single query
    vector with one flat result (`Matches`) rather than a batch."""
    if hasattr(matches, "counts"):
        return matches.keys.astype(np.int64), matches.distances, np.asarray(matches.counts)
    found = len(matches.keys)
    keys = np.full((1, count), -1, dtype=np.int64)
    distances = np.full((1, count), np.inf, dtype=np.float32)
    keys[0, :found], distances[0, :found] = matches.keys, matches.distances
    return keys, distances, np.array([found])


def search(index, keys: np.ndarray, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """For each row (its key and vector), the keys of its k most similar other vectors in the index and their
    cosine similarities (key -1 and similarity NaN where fewer exist), most similar first, in chunks. An index
    of up to EXACT_SEARCH_UP_TO vectors is searched exactly: the graph search misses a few neighbours even there."""
    keys = np.asarray(keys, dtype=np.int64)
    exact = len(index) <= EXACT_SEARCH_UP_TO
    found = np.full((len(keys), k), -1, dtype=np.int64)
    similarity = np.full((len(keys), k), np.nan, dtype=np.float32)
    for start in range(0, len(keys), SEARCH_CHUNK):
        stop = min(start + SEARCH_CHUNK, len(keys))
        queries = np.ascontiguousarray(vectors[start:stop], dtype=np.float32)
        got, distances, counts = batch_matches(index.search(queries, k + 1, threads=threads(), exact=exact), k + 1)
        valid = np.arange(k + 1)[None, :] < counts[:, None]
        valid &= got != keys[start:stop, None]  # a sentence is not its own neighbour
        order = np.argsort(~valid, axis=1, kind="stable")[:, :k]  # the valid ones first, in rank order
        rows = np.arange(stop - start)[:, None]
        keep = valid[rows, order]
        found[start:stop] = np.where(keep, got[rows, order], -1)
        similarity[start:stop] = np.where(keep, 1.0 - distances[rows, order], np.nan)
    return found, similarity


def stored_vectors(index, keys: np.ndarray) -> np.ndarray:
    """The vectors the index holds for `keys` (as float32)."""
    if not len(keys):
        return np.zeros((0, index.ndim), dtype=np.float32)
    return np.stack(index.get(np.asarray(keys, dtype=np.uint64), dtype=np.float32)).astype(np.float32)


def neighbour_rows(keys: np.ndarray, found: np.ndarray, similarity: np.ndarray) -> pd.DataFrame:
    """`sentence_neighbors` rows (sentence_id, neighbor_id, similarity) of a `search` result."""
    keep = found >= 0
    return pd.DataFrame({"sentence_id": np.repeat(np.asarray(keys, dtype=np.int64), found.shape[1])[keep.ravel()],
                         "neighbor_id": found[keep], "similarity": similarity[keep].astype(np.float32)})


def outdated_by(new_rows: pd.DataFrame, kth_similarity: pd.Series) -> np.ndarray:
    """The sentences (ids, not among the new ones) whose stored top-k list a new sentence now enters: a new
    sentence found a stored one as its neighbour, closer than that sentence's own k-th neighbour."""
    reverse = new_rows[~new_rows["neighbor_id"].isin(new_rows["sentence_id"])]
    kth = reverse["neighbor_id"].map(kth_similarity)
    return np.unique(reverse.loc[kth.isna() | (reverse["similarity"] > kth), "neighbor_id"].to_numpy(np.int64))


def near_duplicate_groups(pairs: pd.DataFrame) -> pd.DataFrame:
    """Groups of sentences linked by `pairs` (sentence_id, neighbor_id, similarity), each pair one near-duplicate
    link (connected components: a chain of links is one group): group_id (its smallest sentence_id), sentence_id,
    similarity (to its most similar group member), size; largest groups first."""
    columns = ["group_id", "sentence_id", "similarity", "size"]
    if pairs.empty:
        return pd.DataFrame(columns=columns)
    ids, inverse = np.unique(pairs[["sentence_id", "neighbor_id"]].to_numpy(np.int64), return_inverse=True)
    inverse = inverse.reshape(-1, 2)
    links = coo_matrix((np.ones(len(inverse)), (inverse[:, 0], inverse[:, 1])), shape=(len(ids), len(ids)))
    _, component = connected_components(links, directed=False)
    best = pd.concat([pairs[["sentence_id", "similarity"]],
                      pairs[["neighbor_id", "similarity"]].rename(columns={"neighbor_id": "sentence_id"})])
    best = best.groupby("sentence_id")["similarity"].max()
    groups = pd.DataFrame({"sentence_id": ids, "component": component, "similarity": best.reindex(ids).to_numpy()})
    groups["group_id"] = groups.groupby("component")["sentence_id"].transform("min")
    groups["size"] = groups.groupby("component")["sentence_id"].transform("size")
    return groups.sort_values(["size", "group_id", "sentence_id"], ascending=[False, True, True],
                              ignore_index=True)[columns]


def neighbour_chunks(index, keys: np.ndarray, k: int) -> Iterator[pd.DataFrame]:
    """The `sentence_neighbors` rows of `keys` (each in the index), searched with the vectors the index holds,
    SEARCH_CHUNK keys at a time: memory is one chunk's lists, whatever the corpus."""
    keys = np.asarray(keys, dtype=np.int64)
    for start in range(0, len(keys), SEARCH_CHUNK):
        chunk = keys[start:start + SEARCH_CHUNK]
        yield neighbour_rows(chunk, *search(index, chunk, stored_vectors(index, chunk), k))


def as_neighbours(ids: np.ndarray, rows: pd.DataFrame, k: int) -> Neighbours:
    """`sentence_neighbors` rows (ordered by sentence_id, most similar first, as `neighbour_rows` reads them) of
    the sentences `ids` (sorted) as row positions: each row's at most k most similar rows among `ids` (neighbours
    outside them dropped). Memory: a few arrays of the rows' length, no sort."""
    ids = np.asarray(ids, dtype=np.int64)
    sentence, neighbour = rows["sentence_id"].to_numpy(np.int64), rows["neighbor_id"].to_numpy(np.int64)
    row, column = positions_in(ids, sentence), positions_in(ids, neighbour)
    keep = (row >= 0) & (column >= 0)
    row, column, similarity = row[keep], column[keep], rows["similarity"].to_numpy(np.float32)[keep]
    starts = np.flatnonzero(np.r_[True, row[1:] != row[:-1]]) if len(row) else np.zeros(0, np.int64)
    rank = np.arange(len(row)) - np.repeat(starts, np.diff(np.r_[starts, len(row)]))
    keep = rank < k
    indices = np.full((len(ids), k), -1, dtype=np.int64)
    similarities = np.full((len(ids), k), np.nan, dtype=np.float32)
    indices[row[keep], rank[keep]] = column[keep]
    similarities[row[keep], rank[keep]] = similarity[keep]
    return Neighbours(indices, similarities)


def positions_in(ids: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Position of each key in the sorted `ids`, -1 for a key not among them."""
    if not len(ids):
        return np.full(len(keys), -1, dtype=np.int64)
    at = np.minimum(np.searchsorted(ids, keys), len(ids) - 1)
    return np.where(ids[at] == keys, at, -1)


FIRST_RADIUS_K = 32  # neighbours searched first per row when collecting every neighbour above a threshold
INDEX_ABOVE = 50_000  # rows from which a k-nearest-neighbour graph comes from an index rather than all pairs
# rows from which threshold neighbourhoods come from an index: the automatic thresholds leave hundreds of pairs a
# row, which the index finds by searching ever more neighbours; at 100,000 sentences all pairs were 2.8x faster
THRESHOLD_INDEX_ABOVE = 250_000


def indexed(embeddings: np.ndarray):
    """An index of the rows of `embeddings` (keys: row positions)."""
    index = new_index(embeddings.shape[1])
    add_vectors(index, np.arange(len(embeddings)), embeddings)
    return index


def verified_above(index, embeddings: np.ndarray, rows: np.ndarray, k: int,
                   threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Search the k nearest neighbours of `rows` and keep those at cosine >= threshold on the float32 vectors:
    (rows, neighbours) of the pairs kept, and which rows had all k kept. Scored a rank at a time: memory is the
    rows' vectors and one gathered column, never rows x k vectors."""
    found, _ = search(index, rows, embeddings[rows], k)
    own = embeddings[rows]
    exact = np.full(found.shape, -np.inf, dtype=np.float32)
    for rank in range(found.shape[1]):
        valid = found[:, rank] >= 0
        exact[valid, rank] = np.einsum("ij,ij->i", own[valid], embeddings[found[valid, rank]])
    keep = exact >= np.float32(threshold)
    return np.repeat(rows, found.shape[1]).reshape(found.shape)[keep], found[keep], keep.all(axis=1)


def neighbours_above(embeddings: np.ndarray, threshold: float, index=None) -> tuple[np.ndarray, np.ndarray]:
    """CSR form (indptr, indices) of every row's neighbours at cosine >= threshold, itself included, as
    `community.neighbour_lists` gives them, found through an approximate index instead of scoring every pair:
    each row searches FIRST_RADIUS_K neighbours, and four times more while all it found are above the threshold;
    every pair found is verified on the float32 vectors and recorded both ways (a pair the index missed from one
    end is still kept from the other). Searched in chunks of rows that shrink as k grows: memory is the pairs
    above the threshold plus one chunk."""
    from .community import csr_from_pairs

    n = len(embeddings)
    index = index if index is not None else indexed(embeddings)
    pairs: list[tuple[np.ndarray, np.ndarray]] = []
    todo, k = np.arange(n), min(FIRST_RADIUS_K, n - 1)
    while len(todo) and k:
        last = k >= n - 1  # every other row searched: nothing left to search again
        step = max(1, SEARCH_CHUNK * FIRST_RADIUS_K // k)
        saturated = []
        for start in range(0, len(todo), step):
            chunk = todo[start:start + step]
            rows, cols, full = verified_above(index, embeddings, chunk, k, threshold)
            if not last:  # searched again with more neighbours: drop what this round found for them
                again = np.isin(rows, chunk[full])
                rows, cols = rows[~again], cols[~again]
                saturated.append(chunk[full])
            pairs.append((rows.astype(np.int32), cols.astype(np.int32)) if n < 2**31 else (rows, cols))
        todo = np.concatenate(saturated) if saturated else todo[:0]
        k = min(k * 4, n - 1)
    return csr_from_pairs(pairs, n)
