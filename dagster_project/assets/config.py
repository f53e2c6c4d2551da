"""The launchpad's configuration of the clustering and topic assets (typed `dagster.Config` classes)."""

import dataclasses
import typing

import dagster as dg
import pydantic

from ..core.labels import LABEL_METHODS
from ..core.seeds import SEED_THRESHOLD
from ..core.topic_model import FIT_SAMPLE, WHOLE_GRAPH_UP_TO

SUMMARY_SAMPLE = 200_000  # sentences a topic summary reads at most


def config_class(params: type, name: str, base: type[dg.Config] = dg.Config) -> type[dg.Config]:
    """A typed dagster Config (editable in the launchpad) mirroring a parameter dataclass, on top of `base`."""
    hints = typing.get_type_hints(params)
    fields = {
        f.name: (hints[f.name], pydantic.Field(default=f.default, description=f.metadata.get("description")))
        for f in dataclasses.fields(params)
    }
    return pydantic.create_model("".join(part.title() for part in name.split("_")) + "Config", __base__=base,
                                 **fields)


class RefitConfig(dg.Config):
    """When a run fits again rather than assigning the new sentences to the topics it knows."""

    refit: bool = pydantic.Field(default=False, description=(
        "Fit again now, whatever arrived (the weekly_refit schedule sets it); topic ids are then matched to the "
        "previous topics."))
    refit_when_changed: float = pydantic.Field(default=0.25, description=(
        "Fit again once the sentences added and removed since the last fit reach this share of it."))
    refit_when_unassigned: float = pydantic.Field(default=0.05, description=(
        "Fit again once the new sentences that fit no topic (farther from the nearest centre than the topic's "
        "own spread) reach this share of the last fit."))


class ClusteringRunConfig(RefitConfig):
    """A clustering run: when it fits again, how much of the corpus a fit reads, how close to a seed is close."""

    seed_threshold: float = pydantic.Field(default=SEED_THRESHOLD, description=(
        "A sentence whose cosine similarity to one of a seed's examples (topic_seeds) reaches this belongs to that "
        "seed's topic; the other sentences are clustered."))

    fit_sample: int = pydantic.Field(default=FIT_SAMPLE, description=(
        "Most sentences a fit reads: a larger corpus is fitted on a seeded sample of this many (Louvain: on the "
        "whole neighbour graph of sentence_neighbors, up to whole_graph_up_to) and every other sentence then "
        "assigned to the nearest cluster centre in chunks, so memory stays bounded whatever the corpus (details "
        "say so)."))
    whole_graph_up_to: int = pydantic.Field(default=WHOLE_GRAPH_UP_TO, description=(
        "Louvain only: up to this many sentences it fits every one of them on the graph of sentence_neighbors "
        "(no vectors read, about 2 KB of memory per sentence); beyond, it fits fit_sample sentences on their "
        "neighbours among themselves, as the other algorithms fit a sample."))


class TopicConfig(dg.Config):
    n_keywords: int = pydantic.Field(default=10, description=(
        "Keywords per topic (class-based TF-IDF; the first 10 are scored by clustering_metrics.coherence_npmi)."))
    n_representatives: int = pydantic.Field(default=3, description="Representative sentences per topic.")
    max_ngram: int = pydantic.Field(default=2, description="Longest keyword n-gram (1: single words).")
    diversity: float = pydantic.Field(default=0.0, description=(
        "0: keywords in c-TF-IDF order (the default: the most coherent and diverse keywords measured, see "
        "docs/benchmarks.md). Above 0: candidates re-ranked by similarity to the topic's centre (KeyBERT-style) and "
        "picked by maximal marginal relevance with this diversity, up to 1 (most diverse)."))
    label_method: typing.Literal[tuple(LABEL_METHODS)] = pydantic.Field(default="keywords", description=(
        "How a topic's short label is made: " + "; ".join(f"{name}: {method.__doc__.strip().splitlines()[0]}"
                                                          for name, method in LABEL_METHODS.items())))
    trend_period: typing.Literal["day", "week", "month"] = pydantic.Field(
        default="day", description="Period of `topic_trends` (by sentences.timestamp).")
    sample_size: int = pydantic.Field(default=SUMMARY_SAMPLE, description=(
        "Most sentences the keywords and representatives are drawn from: beyond it, a seeded sample holding every "
        "topic in proportion to its size (one sentence at least); sizes always count every sentence."))
