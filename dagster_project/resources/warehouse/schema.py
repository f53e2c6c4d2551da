"""The DDL of the data contract: every table and view, created once per process and warehouse file."""


SCHEMA = """
CREATE TABLE IF NOT EXISTS sentences (
    sentence_id BIGINT NOT NULL, text VARCHAR NOT NULL, text_hash VARCHAR NOT NULL, source VARCHAR NOT NULL,
    source_row INTEGER, label VARCHAR, ingested_at TIMESTAMP NOT NULL, timestamp TIMESTAMP);
CREATE TABLE IF NOT EXISTS id_watermarks (name VARCHAR PRIMARY KEY, last_id BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS ingested_files (
    source VARCHAR NOT NULL, fingerprint VARCHAR NOT NULL, ingested_at TIMESTAMP NOT NULL);
CREATE TABLE IF NOT EXISTS embedding_cache (
    model_key VARCHAR NOT NULL, text_hash VARCHAR NOT NULL, embedding FLOAT[] NOT NULL,
    created_at TIMESTAMP NOT NULL DEFAULT current_timestamp, PRIMARY KEY (model_key, text_hash));
CREATE TABLE IF NOT EXISTS cluster_assignments (
    algorithm VARCHAR NOT NULL, sentence_id BIGINT NOT NULL, cluster_id INTEGER NOT NULL, topic_id BIGINT);
CREATE TABLE IF NOT EXISTS clustering_runs (
    algorithm VARCHAR NOT NULL, model_key VARCHAR NOT NULL, params JSON, details JSON,
    n_sentences INTEGER, n_clusters INTEGER, seconds DOUBLE, materialized_at TIMESTAMP NOT NULL);
CREATE TABLE IF NOT EXISTS topic_summaries (
    algorithm VARCHAR NOT NULL, cluster_id INTEGER NOT NULL, size INTEGER NOT NULL, share DOUBLE,
    label VARCHAR, keywords VARCHAR[], representative_sentences VARCHAR[], topic_id BIGINT, keyword_label VARCHAR);
CREATE TABLE IF NOT EXISTS clustering_metrics (
    algorithm VARCHAR NOT NULL, model_key VARCHAR, params JSON, n_sentences INTEGER, n_clusters INTEGER,
    noise_fraction DOUBLE, silhouette DOUBLE, silhouette_sample_size INTEGER, davies_bouldin DOUBLE,
    calinski_harabasz DOUBLE, nmi DOUBLE, ari DOUBLE, v_measure DOUBLE, seconds DOUBLE,
    materialized_at TIMESTAMP NOT NULL);
CREATE TABLE IF NOT EXISTS topic_hierarchy (
    algorithm VARCHAR NOT NULL, merge_id INTEGER NOT NULL, "left" INTEGER NOT NULL, "right" INTEGER NOT NULL,
    distance DOUBLE, size INTEGER);
CREATE TABLE IF NOT EXISTS sentence_map (
    sentence_id BIGINT NOT NULL, x FLOAT NOT NULL, y FLOAT NOT NULL, method VARCHAR);
CREATE TABLE IF NOT EXISTS adapted_models (
    method VARCHAR NOT NULL, model_path VARCHAR NOT NULL, model_key VARCHAR NOT NULL, base_model_key VARCHAR NOT NULL,
    corpus_fingerprint VARCHAR NOT NULL, params JSON, sentences INTEGER, steps INTEGER, train_seconds DOUBLE,
    materialized_at TIMESTAMP NOT NULL);
CREATE TABLE IF NOT EXISTS topics (
    algorithm VARCHAR NOT NULL, topic_id BIGINT NOT NULL, cluster_id INTEGER, label VARCHAR, status VARCHAR NOT NULL,
    first_seen TIMESTAMP NOT NULL, last_seen TIMESTAMP NOT NULL, size INTEGER NOT NULL, centroid FLOAT[],
    radius DOUBLE, model_key VARCHAR);
CREATE TABLE IF NOT EXISTS topic_events (
    algorithm VARCHAR NOT NULL, topic_id BIGINT NOT NULL, materialized_at TIMESTAMP NOT NULL, event VARCHAR NOT NULL,
    other_topic_id BIGINT, size INTEGER);
CREATE TABLE IF NOT EXISTS topic_trends (
    algorithm VARCHAR NOT NULL, topic_id BIGINT NOT NULL, period TIMESTAMP NOT NULL, period_unit VARCHAR NOT NULL,
    sentences INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS topic_lineage (
    algorithm VARCHAR NOT NULL, topic_id BIGINT NOT NULL, ancestor_topic_id BIGINT NOT NULL,
    generations INTEGER NOT NULL);
CREATE SEQUENCE IF NOT EXISTS topic_curation_revision;
CREATE TABLE IF NOT EXISTS topic_curation (
    algorithm VARCHAR NOT NULL, topic_id BIGINT NOT NULL, label VARCHAR,
    revision BIGINT DEFAULT nextval('topic_curation_revision'));
CREATE TABLE IF NOT EXISTS topic_seeds (algorithm VARCHAR, name VARCHAR, example VARCHAR);
CREATE TABLE IF NOT EXISTS recommended (algorithm VARCHAR NOT NULL, reason VARCHAR, chosen_at TIMESTAMP NOT NULL);
CREATE TABLE IF NOT EXISTS sentence_neighbors (
    model_key VARCHAR NOT NULL, sentence_id BIGINT NOT NULL, neighbor_id BIGINT NOT NULL, similarity FLOAT NOT NULL);
CREATE TABLE IF NOT EXISTS near_duplicates (
    model_key VARCHAR NOT NULL, group_id BIGINT NOT NULL, sentence_id BIGINT NOT NULL, similarity FLOAT,
    size INTEGER NOT NULL);
CREATE VIEW IF NOT EXISTS sentence_outliers AS
    SELECT model_key, sentence_id, min(similarity) AS kth_similarity, count(*) AS neighbors
    FROM sentence_neighbors GROUP BY ALL;
-- columns added after the first release: warehouses written before gain them on first open
ALTER TABLE sentences ADD COLUMN IF NOT EXISTS timestamp TIMESTAMP;
ALTER TABLE cluster_assignments ADD COLUMN IF NOT EXISTS topic_id BIGINT;
ALTER TABLE topic_summaries ADD COLUMN IF NOT EXISTS topic_id BIGINT;
ALTER TABLE topic_summaries ADD COLUMN IF NOT EXISTS keyword_label VARCHAR;
ALTER TABLE topic_summaries ADD COLUMN IF NOT EXISTS curated_from BIGINT;
ALTER TABLE topic_summaries ADD COLUMN IF NOT EXISTS seeded BOOLEAN;
ALTER TABLE topics ADD COLUMN IF NOT EXISTS seed VARCHAR;
ALTER TABLE topic_curation ADD COLUMN IF NOT EXISTS revision BIGINT DEFAULT nextval('topic_curation_revision');
ALTER TABLE sentence_map ADD COLUMN IF NOT EXISTS model_key VARCHAR;
ALTER TABLE sentence_map ADD COLUMN IF NOT EXISTS placed BOOLEAN;
ALTER TABLE clustering_metrics ADD COLUMN IF NOT EXISTS coherence_npmi DOUBLE;
ALTER TABLE clustering_metrics ADD COLUMN IF NOT EXISTS topic_diversity DOUBLE;
"""
