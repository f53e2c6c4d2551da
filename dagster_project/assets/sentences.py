import time

import dagster as dg

from ..core.readers import InputError, open_corpus
from ..resources import DuckDBWarehouse
from ..resources.warehouse import source_scope
from ..settings import SENTENCES_PATH, served


def sentence_partitions(mode: str) -> dg.DynamicPartitionsDefinition | None:
    """SENTENCE_PARTITIONS: one partition per file under SENTENCES_PATH (its `source` name), or per top-level
    folder (one landing folder per arrival date, say), added and removed by the file sensor; None for "none"."""
    return dg.DynamicPartitionsDefinition(name=f"sentence_{mode}") if mode != "none" else None


def build_sentences(partitions: dg.DynamicPartitionsDefinition | None) -> dg.AssetsDefinition:
    @dg.asset(name="sentences", group_name="ingest", kinds={"python", "duckdb"}, partitions_def=partitions,
              metadata=served())  # the corpus and warehouse these definitions were built for
    def sentences(context: dg.AssetExecutionContext, warehouse: DuckDBWarehouse) -> dg.MaterializeResult:
        """Raw sentences from SENTENCES_PATH (file, folder or glob of .txt/.csv/.tsv/.jsonl/.parquet),
        Unicode-NFC and whitespace normalized, empty rows dropped, hashed. Replaces table `sentences` (with
        SENTENCE_PARTITIONS=files or folders: the rows of one file or folder); unchanged rows keep their
        sentence_id."""
        return ingest(context, warehouse, SENTENCES_PATH.value())

    return sentences


def ingest(context: dg.AssetExecutionContext, warehouse: DuckDBWarehouse, spec: str) -> dg.MaterializeResult:
    """Store the sentences of `spec` (of the run's partition only, when partitioned)."""
    started = time.perf_counter()
    source = context.partition_key if context.has_partition_key else None
    try:  # read in parts and stored in one transaction: a bad row anywhere writes nothing
        corpus = open_corpus(spec, partition=source)
        counts = warehouse.replace_sentences(corpus, source, corpus.fingerprints)
    except InputError as err:  # the message is the whole story (file, row, field, what to do): no traceback
        raise dg.Failure(description=str(err), metadata={"SENTENCES_PATH": spec, "error": "InputError"},
                         allow_retries=False) from None
    scope, params = source_scope(source)
    preview = warehouse.query(f"SELECT text, label, source FROM sentences WHERE {scope} ORDER BY source, source_row "
                              "LIMIT 10", params)
    context.log.info(f"{counts['rows']} sentences from {len(corpus.files)} file(s); {counts['new']} new")
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": counts["rows"],
            "new_rows": counts["new"],
            "removed_rows": counts["removed"],
            "empty_rows_dropped": corpus.empty_rows_dropped,
            "distinct_texts": counts["distinct_texts"],
            "labelled_rows": counts["labelled"],
            "files": dg.MetadataValue.md("\n".join(f"- `{f}`" for f in corpus.files[:50])),
            "source": spec,
            "seconds": round(time.perf_counter() - started, 3),
            "preview": dg.MetadataValue.md(preview.to_markdown(index=False)),
        }
    )
