"""Approximate nearest neighbours of the sentence embeddings: a USearch HNSW index (the library DuckDB's `vss`
extension is built on; chosen by measurement, see docs/benchmarks.md), kept on disk beside the warehouse and
grown with new sentences, and what is read from it: each sentence's k most similar others, near-duplicate groups."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
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
        # the slots past a row's matches hold whatever the index left there (garbage, not distances): never read
        similarity[start:stop] = np.where(keep, 1.0 - np.where(keep, distances[rows, order], 0.0), np.nan)
    return found, similarity


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


SHARD_SIZE = 2_000_000  # vectors per index file: memory holds one file's index (about 2.5 GB), whatever the corpus
QUERY_BLOCK = 250_000  # rows searched in every file before the next rows: their vectors and best k in memory


def best_of(found: np.ndarray, similarity: np.ndarray, more: np.ndarray,
            more_similarity: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's k most similar of two `search` results over different vectors (k: the results' width)."""
    keys, scores = np.hstack([found, more]), np.hstack([similarity, more_similarity])
    order = np.argsort(np.where(np.isnan(scores), np.inf, -scores), axis=1, kind="stable")[:, :found.shape[1]]
    rows = np.arange(len(keys))[:, None]
    return keys[rows, order], scores[rows, order]


class ShardedIndex:
    """The index kept as files of at most `shard_size` vectors (`path`, then `<stem>-1.usearch`, ...), one of them
    in memory at a time: memory is one file's index whatever the corpus. A search asks every file in turn and
    keeps the k best; vectors are added to the last file until it is full. Up to `shard_size` vectors this is one
    file, loaded once. Files that are missing, unreadable or of other vectors' size make a new index (`created`)."""

    def __init__(self, path: Path, dimensions: int, shard_size: int = SHARD_SIZE, rebuild: bool = False):
        self.path, self.dimensions, self.shard_size = path, dimensions, max(1, shard_size)
        self.sizes: list[int] = []  # vectors per file
        while not rebuild and self.file(len(self.sizes)).exists():
            from usearch.index import Index

            info = Index.metadata(str(self.file(len(self.sizes))))
            if not info or info["dimensions"] != dimensions:
                self.sizes = []
                break
            self.sizes.append(int(info["count_present"]))
        self.created = not self.sizes  # no index file yet: made now
        self.written = set(range(len(self.sizes)))  # the files that hold this index (not an older one)
        self.current, self.index, self.changed = -1, None, False

    def file(self, number: int) -> Path:
        return self.path if number == 0 else self.path.with_name(f"{self.path.stem}-{number}{self.path.suffix}")

    def __len__(self) -> int:
        return sum(self.sizes)

    def shard(self, number: int):
        """File `number`'s index, in memory (the one held before written first, if it changed)."""
        if number != self.current:
            self.flush()
            self.index = None  # freed before the next is read: never two files in memory
            self.index = open_index(self.file(number), self.dimensions) if number in self.written else None
            self.index = self.index if self.index is not None else new_index(max(self.dimensions, 1))
            self.current = number
        return self.index

    def flush(self) -> None:
        if self.changed:
            save_index(self.index, self.file(self.current))
            self.sizes[self.current], self.changed = len(self.index), False
            self.written.add(self.current)

    def in_memory_first(self) -> list[int]:
        return sorted(range(len(self.sizes)), key=lambda number: number != self.current)

    def contains(self, keys: np.ndarray) -> np.ndarray:
        found = np.zeros(len(keys), dtype=bool)
        for number in self.in_memory_first():
            if self.sizes[number]:
                found |= np.asarray(self.shard(number).contains(np.asarray(keys, dtype=np.uint64)), dtype=bool)
        return found

    def remove(self, keys: np.ndarray) -> None:
        keys = np.asarray(keys, dtype=np.uint64)
        for number in self.in_memory_first():
            shard = self.shard(number)
            held = np.asarray(shard.contains(keys), dtype=bool) if len(keys) and len(shard) else []
            if np.any(held):
                shard.remove(keys[held])
                self.sizes[number], self.changed = len(shard), True

    def add(self, keys: np.ndarray, vectors: np.ndarray) -> None:
        """Add to the last file, a new one when it is full."""
        start = 0
        while start < len(keys):
            if not self.sizes or self.sizes[-1] >= self.shard_size:
                self.flush()
                self.sizes.append(0)
            shard = self.shard(len(self.sizes) - 1)
            stop = start + self.shard_size - len(shard)
            add_vectors(shard, keys[start:stop], vectors[start:stop])
            self.sizes[-1], self.changed, start = len(shard), True, stop

    def vectors(self, keys: np.ndarray) -> np.ndarray:
        """The vectors (float32) the index holds for `keys`, each in one of its files."""
        found = np.zeros((len(keys), self.dimensions), dtype=np.float32)
        for number in self.in_memory_first():
            shard = self.shard(number) if self.sizes[number] else None
            held = np.asarray(shard.contains(np.asarray(keys, dtype=np.uint64)), dtype=bool) if shard else []
            if np.any(held):
                found[held] = np.stack(shard.get(np.asarray(keys, dtype=np.uint64)[held], dtype=np.float32))
        return found

    def search(self, keys: np.ndarray, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """`search` over every file: each row's k most similar other vectors of the whole index."""
        found = np.full((len(keys), k), -1, dtype=np.int64)
        similarity = np.full((len(keys), k), np.nan, dtype=np.float32)
        for number in self.in_memory_first():
            if self.sizes[number]:
                found, similarity = best_of(found, similarity, *search(self.shard(number), keys, vectors, k))
        return found, similarity

    def save(self) -> None:
        """Write the file in memory if it changed; remove the files past the last that holds vectors (every file
        when the index is empty)."""
        self.flush()
        while self.sizes and not self.sizes[-1]:
            self.sizes.pop()
        if self.current >= len(self.sizes):
            self.current, self.index = -1, None
        number = len(self.sizes)
        while self.file(number).exists():
            self.file(number).unlink()
            number += 1


def neighbour_chunks(index: ShardedIndex, keys: np.ndarray, k: int) -> Iterator[pd.DataFrame]:
    """The `sentence_neighbors` rows of `keys` (each in the index), searched with the vectors the index holds,
    QUERY_BLOCK keys at a time against every file of the index, yielded SEARCH_CHUNK keys at a time: memory is one
    file's index and one block's vectors and lists, whatever the corpus."""
    keys = np.asarray(keys, dtype=np.int64)
    for start in range(0, len(keys), QUERY_BLOCK):
        block = keys[start:start + QUERY_BLOCK]
        found, similarity = index.search(block, index.vectors(block), k)
        for at in range(0, len(block), SEARCH_CHUNK):
            yield neighbour_rows(block[at:at + SEARCH_CHUNK], found[at:at + SEARCH_CHUNK],
                                 similarity[at:at + SEARCH_CHUNK])


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


def complete_neighbours(ids: np.ndarray, rows_of: Callable[[int], pd.DataFrame], k: int) -> Neighbours | None:
    """The stored neighbour lists (`rows_of(k)`: `sentence_neighbors` rows, at most k per sentence) of the sentences
    `ids` as row positions, when every one of them has its min(k, sentences - 1) neighbours; else None."""
    k = min(k, len(ids) - 1)
    if k < 1:
        return None
    rows = rows_of(k)
    if not (rows["sentence_id"].value_counts().reindex(ids).fillna(0) >= k).all():
        return None
    return as_neighbours(ids, rows, k)


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
