"""Sentence Topics: raw sentences to clusters and topic summaries, as Dagster assets in DuckDB."""
