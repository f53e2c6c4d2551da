"""Pure logic of Sentence Topics: no Dagster, no database, no torch."""
