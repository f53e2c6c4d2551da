"""Approximate nearest neighbours of the sentence embeddings: a USearch HNSW index (the library DuckDB's `vss`
extension is built on; chosen by measurement, see docs/benchmarks.md), kept on disk beside the warehouse and
grown with new sentences, and what is read from it: each sentence's k most similar others, near-duplicate groups."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

CONNECTIVITY = 16  # graph edges per node (HNSW's M)
EXPANSION_ADD = 128  # candidates while inserting (efConstruction)
EXPANSION_SEARCH = 64  # candidates while searching (ef): recall@10 0.99 on 100,000 real vectors
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
    cosine similarities (key -1 and similarity NaN where fewer exist), most similar first, in chunks."""
    keys = np.asarray(keys, dtype=np.int64)
    found = np.full((len(keys), k), -1, dtype=np.int64)
    similarity = np.full((len(keys), k), np.nan, dtype=np.float32)
    for start in range(0, len(keys), SEARCH_CHUNK):
        stop = min(start + SEARCH_CHUNK, len(keys))
        got, distances, counts = batch_matches(
            index.search(np.ascontiguousarray(vectors[start:stop], dtype=np.float32), k + 1, threads=threads()), k + 1)
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


def neighbours_of(index, keys: np.ndarray, k: int) -> pd.DataFrame:
    """`sentence_neighbors` rows of `keys` (each in the index), searched with the vectors the index holds, a
    chunk at a time."""
    parts = [neighbour_rows(chunk, *search(index, chunk, stored_vectors(index, chunk), k))
             for chunk in np.array_split(np.asarray(keys, dtype=np.int64), max(1, -(-len(keys) // SEARCH_CHUNK)))]
    return pd.concat(parts, ignore_index=True) if parts else neighbour_rows(np.zeros(0, np.int64),
                                                                           np.zeros((0, k), np.int64),
                                                                           np.zeros((0, k), np.float32))


def as_neighbours(ids: np.ndarray, rows: pd.DataFrame, k: int) -> Neighbours:
    """`sentence_neighbors` rows of the sentences `ids` (sorted) as row positions: each row's at most k most
    similar rows among `ids` (neighbours outside them dropped)."""
    ids = np.asarray(ids, dtype=np.int64)
    rows = rows[rows["sentence_id"].isin(ids) & rows["neighbor_id"].isin(ids)]
    rows = rows.sort_values(["sentence_id", "similarity"], ascending=[True, False], kind="stable")
    rank = rows.groupby("sentence_id").cumcount().to_numpy()
    keep = rank < k
    row = np.searchsorted(ids, rows["sentence_id"].to_numpy()[keep])
    indices = np.full((len(ids), k), -1, dtype=np.int64)
    similarities = np.full((len(ids), k), np.nan, dtype=np.float32)
    indices[row, rank[keep]] = np.searchsorted(ids, rows["neighbor_id"].to_numpy()[keep])
    similarities[row, rank[keep]] = rows["similarity"].to_numpy()[keep]
    return Neighbours(indices, similarities)


FIRST_RADIUS_K = 32  # neighbours searched first per row when collecting every neighbour above a threshold
INDEX_ABOVE = 50_000  # sentences from which threshold neighbourhoods come from an index rather than all pairs


def indexed(embeddings: np.ndarray):
    """An index of the rows of `embeddings` (keys: row positions)."""
    index = new_index(embeddings.shape[1])
    add_vectors(index, np.arange(len(embeddings)), embeddings)
    return index


def neighbours_above(embeddings: np.ndarray, threshold: float, index=None) -> tuple[np.ndarray, np.ndarray]:
    """CSR form (indptr, indices) of every row's neighbours at cosine >= threshold, itself included, as
    `community.neighbour_lists` gives them, found through an approximate index instead of scoring every pair:
    each row searches FIRST_RADIUS_K neighbours, and four times more while all it found are above the threshold;
    every pair found is verified on the float32 vectors and recorded both ways (a pair the index missed from one
    end is still kept from the other)."""
    n = len(embeddings)
    index = index if index is not None else indexed(embeddings)
    rows_found, cols_found = [np.arange(n)], [np.arange(n)]
    todo, k = np.arange(n), FIRST_RADIUS_K
    while len(todo):
        k = min(k, n - 1)
        found, _ = search(index, todo, embeddings[todo], k) if k else (np.zeros((len(todo), 0), np.int64), None)
        rows = np.repeat(todo, found.shape[1]).reshape(found.shape)
        valid = found >= 0
        exact = np.zeros(found.shape, dtype=np.float32)
        exact[valid] = np.einsum("ij,ij->i", embeddings[rows[valid]], embeddings[found[valid]])
        keep = valid & (exact >= np.float32(threshold))
        rows_found.append(rows[keep])
        cols_found.append(found[keep])
        saturated = keep.all(axis=1) if k else np.zeros(len(todo), bool)
        if k >= n - 1:
            break
        todo, k = todo[saturated], k * 4
        if len(todo):  # searched again with more neighbours: drop what this round found for them
            again = np.isin(rows_found[-1], todo)
            rows_found[-1], cols_found[-1] = rows_found[-1][~again], cols_found[-1][~again]
    rows = np.concatenate(rows_found + cols_found[1:])
    cols = np.concatenate(cols_found + rows_found[1:])
    pairs = np.unique(rows.astype(np.int64) * n + cols)
    rows, cols = pairs // n, pairs % n
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n), out=indptr[1:])
    return indptr, cols
