"""Thin Dagster layer: wiring, I/O and metadata; the logic lives in dagster_project.core."""
