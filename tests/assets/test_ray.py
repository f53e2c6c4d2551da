"""EMBEDDING_ENGINE=ray with SENTENCE_PARTITIONS=files: a real local Ray cluster on loopback, five file partitions
(one, then four) by four concurrent `dagster asset materialize` processes, the vectors written as Parquet by the Ray
actors and committed to the real DuckDB file: equal to the single-process vectors, nothing lost or duplicated."""

import os
import shutil
import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import dagster as dg
import duckdb
import numpy as np
import pandas as pd
import pytest

from dagster_project.settings import SAMPLE_CORPUS
from dagster_project.core.text import normalize_text, text_hash

from support import require

pytestmark = pytest.mark.extras


@pytest.fixture(autouse=True)
def ray_installed():
    require("dagster_ray", "ray")


ROOT = Path(__file__).resolve().parents[2]
RAY = shutil.which("ray", path=str(Path(sys.executable).parent))
FILES = ["a.csv", "b.csv", "c.csv", "d.csv", "e.csv"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def ray_address(tmp_path_factory):
    """A Ray head on 127.0.0.1 with two CPUs, stopped afterwards."""
    address = f"127.0.0.1:{free_port()}"
    temp = tmp_path_factory.mktemp("ray")
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    subprocess.run([RAY, "start", "--head", "--node-ip-address=127.0.0.1", f"--port={address.split(':')[1]}",
                    "--num-cpus=2", "--include-dashboard=false", f"--temp-dir={temp}", "--disable-usage-stats"],
                   env=env, check=True, capture_output=True, timeout=180)
    yield address
    subprocess.run([RAY, "stop", "--force"], env=env, capture_output=True, timeout=120)


def test_four_concurrent_partitions_on_ray_store_the_single_process_vectors(ray_address, tmp_path, embedder):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    sample = pd.read_csv(f"{SAMPLE_CORPUS}/sample_corpus.csv")
    for number, name in enumerate(FILES):
        sample.iloc[number :: len(FILES)].to_csv(corpus / name, index=False)
    home = tmp_path / "dagster_home"
    home.mkdir()
    db = tmp_path / "w.duckdb"
    env = {**os.environ, "DAGSTER_HOME": str(home), "DUCKDB_PATH": str(db), "SENTENCES_PATH": str(corpus),
           "SENTENCE_PARTITIONS": "files", "EMBEDDING_ENGINE": "ray", "RAY_ADDRESS": ray_address,
           "RAY_EMBEDDING_WORKERS": "2", "EMBEDDING_STAGING_DIR": str(tmp_path / "staging"),
           "EMBEDDING_DEVICE": "cpu"}
    os.environ["DAGSTER_HOME"] = str(home)
    try:
        with dg.DagsterInstance.get() as instance:
            instance.add_dynamic_partitions("sentence_files", FILES)
    finally:
        del os.environ["DAGSTER_HOME"]
    cli = [sys.executable, "-m", "dagster", "asset", "materialize", "-m", "dagster_project.definitions",
           "--select", "sentences,sentence_embeddings", "--config-json",
           '{"ops": {"sentence_embeddings": {"config": {"chunk_size": 16}}}}']

    def run(partition: str) -> subprocess.CompletedProcess:
        try:
            return subprocess.run([*cli, "--partition", partition], cwd=ROOT, env=env, capture_output=True,
                                  text=True, timeout=300)
        except subprocess.TimeoutExpired as stuck:  # show where it stopped, not only that it did
            output = "".join(o.decode() if isinstance(o, bytes) else o for o in (stuck.stdout, stuck.stderr) if o)
            return subprocess.CompletedProcess(stuck.cmd, -1, f"{partition} timed out:\n{output}", "")

    first = run(FILES[0])  # starts the detached actors; the four concurrent runs then join them while they live
    with ThreadPoolExecutor(len(FILES) - 1) as pool:
        runs = [first, *pool.map(run, FILES[1:])]
    for done in runs:
        assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
        assert "RUN_SUCCESS" in done.stdout + done.stderr

    os.environ["DAGSTER_HOME"] = str(home)
    try:
        with dg.DagsterInstance.get() as instance:
            records = instance.fetch_materializations(dg.AssetKey("sentence_embeddings"), limit=10).records
    finally:
        del os.environ["DAGSTER_HOME"]
    assert sorted(r.partition_key for r in records) == FILES
    for record in records:  # each run says how its workers did: two worker processes, each holding the model
        metadata = record.asset_materialization.metadata
        assert len(metadata["worker_peak_rss_mb"].value) == 2, metadata
        assert min(metadata["worker_peak_rss_mb"].value) > 100 and metadata["worker_encode_seconds"].value > 0

    texts = sorted({normalize_text(t) for t in sample["text"]})
    with duckdb.connect(str(db), read_only=True) as conn:
        assert conn.execute("SELECT count(*) FROM sentences").fetchall()[0][0] == len(sample)
        rows = conn.execute("SELECT text_hash, embedding FROM embedding_cache ORDER BY text_hash").fetchall()
    assert len(rows) == len({r[0] for r in rows}) == len(texts)  # nothing lost, nothing duplicated
    stored = dict(rows)
    expected = embedder.encode(texts)
    got = np.array([stored[text_hash(t)] for t in texts], dtype=np.float32)
    assert np.abs(got - expected).max() < 1e-4
    assert not list((tmp_path / "staging").rglob("*.parquet"))  # every staged file committed and removed


def test_actors_that_cannot_be_placed_fail_with_the_cluster_resources(ray_address, embedder):
    import ray

    from dagster_project.resources.ray_embedding import RayCluster, embedding_actors

    ray.init(address=ray_address, namespace="sentence_topics_test", log_to_driver=False)
    try:
        with pytest.raises(RuntimeError, match=r"did not start within 5 s.*'CPU': 2.0.*RAY_GPUS_PER_WORKER"):
            embedding_actors(embedder, RayCluster(address=ray_address, gpus_per_worker=1, start_timeout=5))
        assert not [a for a in ray.util.list_named_actors(all_namespaces=True) if "gpu1" in a["name"]]
    finally:
        ray.shutdown()
