import time

import dagster as dg

from ..core.readers import read_corpus
from ..resources import DuckDBWarehouse
from .settings import sentences_path


@dg.asset(group_name="ingest", kinds={"python", "duckdb"})
def sentences(context: dg.AssetExecutionContext, warehouse: DuckDBWarehouse) -> dg.MaterializeResult:
    """Raw sentences from SENTENCES_PATH (file, folder or glob of .txt/.csv/.tsv/.jsonl/.parquet),
    Unicode-NFC and whitespace normalized, empty rows dropped, hashed. Replaces table `sentences`;
    unchanged rows keep their sentence_id."""
    spec = sentences_path()
    started = time.perf_counter()
    corpus = read_corpus(spec)
    counts = warehouse.replace_sentences(corpus.frame)
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
