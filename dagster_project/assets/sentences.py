import time

import dagster as dg

from ..core.readers import InputError, read_corpus
from ..resources import DuckDBWarehouse
from .settings import partition_mode, sentences_path, served

# One partition per file under SENTENCES_PATH (its `source` name), or per top-level folder (one landing folder
# per arrival date, say), added and removed by the file sensor.
SENTENCE_PARTITIONS = (dg.DynamicPartitionsDefinition(name=f"sentence_{partition_mode()}")
                       if partition_mode() != "none" else None)


@dg.asset(group_name="ingest", kinds={"python", "duckdb"}, partitions_def=SENTENCE_PARTITIONS, metadata=served())
def sentences(context: dg.AssetExecutionContext, warehouse: DuckDBWarehouse) -> dg.MaterializeResult:
    """Raw sentences from SENTENCES_PATH (file, folder or glob of .txt/.csv/.tsv/.jsonl/.parquet),
    Unicode-NFC and whitespace normalized, empty rows dropped, hashed. Replaces table `sentences` (with
    SENTENCE_PARTITIONS=files or folders: the rows of one file or folder); unchanged rows keep their sentence_id."""
    spec = sentences_path()
    started = time.perf_counter()
    source = context.partition_key if context.has_partition_key else None
    try:
        corpus = read_corpus(spec, partition=source)
    except InputError as err:  # the message is the whole story (file, row, field, what to do): no traceback
        raise dg.Failure(description=str(err), metadata={"SENTENCES_PATH": spec, "error": "InputError"},
                         allow_retries=False) from None
    counts = warehouse.replace_sentences(corpus.frame, source, corpus.fingerprints)
    frame = corpus.frame
    labelled = int(frame["label"].notna().sum())
    context.log.info(f"{counts['rows']} sentences from {len(corpus.files)} file(s); {counts['new']} new")
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": counts["rows"],
            "new_rows": counts["new"],
            "removed_rows": counts["removed"],
            "empty_rows_dropped": corpus.empty_rows_dropped,
            "distinct_texts": int(frame["text_hash"].nunique()),
            "labelled_rows": labelled,
            "files": dg.MetadataValue.md("\n".join(f"- `{f}`" for f in corpus.files[:50])),
            "source": spec,
            "seconds": round(time.perf_counter() - started, 3),
            "preview": dg.MetadataValue.md(frame[["text", "label", "source"]].head(10).to_markdown(index=False)),
        }
    )
