"""The UI as a person would use it: the Dagster webserver on localhost, driven by headless Chromium."""

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import playwright.sync_api as playwright
import pytest

from dagster_project.settings import SAMPLE_CORPUS
from dagster_project.core.clustering import SCHEDULED
from dagster_project.core.readers import open_corpus
from dagster_project.resources import DuckDBWarehouse

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(autouse=True)
def chromium_installed():
    """The UI is checked in Debian's Chromium: without it these tests fail (never skip); .ci/run installs it."""
    if CHROMIUM is None:
        pytest.fail("Debian's chromium is not installed: `apt-get install chromium` (.ci/run does)", pytrace=False)


BROWSER_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
                "--disable-background-networking", "--disable-component-update"]
ASSETS = ["sentences", "sentence_embeddings", "sentence_neighbors", "sentence_map", "clustering_metrics", "recommended",
          "topic_report"] + [
    f"{name}_{kind}" for name in ("kmeans", "minibatch_kmeans", "agglomerative", "community_detection", "louvain",
                                  "hdbscan", "dbscan") for kind in ("clusters", "topics")]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def shown(name: str, texts: list[str]) -> bool:
    """The graph shortens long names as 'prefix…suffix'."""
    for text in texts:
        if text == name or ("…" in text and name.startswith(text.split("…")[0]) and name.endswith(text.split("…")[1])):
            return True
    return False


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """`make run` on the sample corpus into a fresh warehouse, as the README has it; then the webserver on that
    warehouse and its own Dagster home."""
    folder = tmp_path_factory.mktemp("warehouse")
    db = folder / "w.duckdb"
    env = {k: v for k, v in os.environ.items() if k not in ("DAGSTER_HOME", "DUCKDB_PATH", "SENTENCES_PATH")}
    env["EMBEDDING_DEVICE"] = "cpu"
    made = subprocess.run(["make", "run", f"VENV={sys.prefix}", f"DUCKDB_PATH={db}", f"SENTENCES_PATH={SAMPLE_CORPUS}"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert made.returncode == 0, (made.stdout + made.stderr)[-5000:]
    assert f"Warehouse {db}:" in made.stdout
    env.update(DAGSTER_HOME=str(folder / "w.dagster"), DUCKDB_PATH=str(db), SENTENCES_PATH=SAMPLE_CORPUS)
    url, server = serve(env)
    yield url, folder
    server.terminate()
    server.wait(timeout=30)


@pytest.fixture(scope="module")
def webserver(served):
    return served[0]


def serve(env: dict) -> tuple[str, subprocess.Popen]:
    """The Dagster webserver on a free localhost port, once it answers."""
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "dagster_webserver", "-m", "dagster_project.definitions",
                               "-h", "127.0.0.1", "-p", str(port)], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 180
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"{url}/server_info", timeout=2)
            return url, server
        except OSError:
            time.sleep(1)
    server.kill()
    pytest.fail("the Dagster webserver did not answer within 180 s")


@pytest.fixture(scope="module")
def browser():
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def page(webserver, browser):
    return browser.new_page(viewport={"width": 2200, "height": 1800})


@pytest.fixture(scope="module")
def screenshot_dir(tmp_path_factory) -> Path:
    """Where the screenshots go: a temporary folder, or UI_SCREENSHOT_DIR (`make screenshots` retakes the README's
    pictures in docs/images this way)."""
    return Path(os.environ.get("UI_SCREENSHOT_DIR") or tmp_path_factory.mktemp("screenshots"))


def dismiss_dialogs(page) -> None:
    """A fresh Dagster home greets the first visit with a newsletter dialog that covers the page."""
    skip = page.get_by_role("button", name="Skip")
    try:
        skip.wait_for(state="visible", timeout=8_000)
    except playwright.Error:
        return
    skip.click()
    skip.wait_for(state="hidden", timeout=8_000)


def visible_lines(page) -> set[str]:
    return {line.strip() for text in page.locator("body *").all_inner_texts() if text
            for line in text.splitlines() if line.strip()}


def test_asset_graph_shows_the_whole_lineage(webserver, page):
    page.goto(f"{webserver}/asset-groups", wait_until="networkidle")
    dismiss_dialogs(page)
    page.get_by_text("topics", exact=True).first.wait_for(timeout=60_000)  # the collapsed group nodes
    page.keyboard.press("Alt+e")  # the graph's "Expand all groups"
    page.wait_for_url("**expanded=**", timeout=60_000)
    page.wait_for_timeout(3000)
    seen = visible_lines(page)
    page.mouse.move(1300, 900)
    for direction in [-1] * 12 + [1] * 36:  # the graph draws what is in view: scroll through all of it
        page.mouse.wheel(0, 400 * direction)
        page.wait_for_timeout(400)
        seen |= visible_lines(page)
    missing = [name for name in ASSETS if not shown(name, sorted(seen))]
    assert not missing, missing


def test_picture_of_the_whole_asset_graph(webserver, browser, screenshot_dir):
    """The README's lineage picture: every group expanded, zoomed out, panned to where most of the graph is in
    view; every asset is seen on the way."""
    page = browser.new_page(viewport={"width": 1600, "height": 1300})
    page.goto(f"{webserver}/asset-groups", wait_until="networkidle")
    dismiss_dialogs(page)
    page.get_by_text("topics", exact=True).first.wait_for(timeout=60_000)
    page.keyboard.press("Alt+e")
    page.wait_for_url("**expanded=**", timeout=60_000)
    page.wait_for_timeout(3000)
    for _ in range(1):
        page.mouse.click(1572, 1151)  # the graph's zoom-out button, bottom right (further, names are not drawn)
        page.wait_for_timeout(400)
    page.mouse.move(1000, 600)
    seen, best, best_offset, offset = set(), -1, 0, 0
    for step in [0] + [-200] * 16 + [200] * 48:  # pan from above the graph to below it
        page.mouse.wheel(0, step)
        offset += step
        page.wait_for_timeout(400)
        here = {name for name in [*ASSETS, "adapted_model"] if shown(name, sorted(visible_lines(page)))}
        seen |= here
        if len(here) > best:
            best, best_offset = len(here), offset
    assert seen >= {*ASSETS, "adapted_model"}, sorted({*ASSETS, "adapted_model"} - seen)
    page.mouse.wheel(0, best_offset - offset)  # back to where the most assets were in view
    page.wait_for_timeout(1000)
    page.screenshot(path=str(screenshot_dir / "ui_asset_graph.png"),
                    clip={"x": 560, "y": 140, "width": 960, "height": 1060})
    page.close()


def test_topic_asset_shows_topic_table_and_map(webserver, page, screenshot_dir):
    page.goto(f"{webserver}/assets/kmeans_topics", wait_until="networkidle")
    dismiss_dialogs(page)
    page.get_by_text("topic_hierarchy").first.wait_for(timeout=60_000)
    body = page.inner_text("body")
    for entry in ("top_topics", "topic_map", "top_topics_chart", "topic_hierarchy"):
        assert entry in body
    page.get_by_text("[Show Markdown]").first.click()  # top_topics: the markdown topic table
    page.wait_for_timeout(1000)
    assert "keywords" in page.inner_text("body")
    page.keyboard.press("Escape")
    page.get_by_text("[Show Markdown]").nth(2).click()  # topic_map
    image = page.locator("img[src^='data:image/png']").first
    image.wait_for(timeout=10_000)
    assert image.evaluate("img => img.naturalWidth") > 600
    page.wait_for_timeout(1500)  # the dialog fades in
    page.screenshot(path=str(screenshot_dir / "ui_topic_map.png"))


def test_sentences_asset_names_the_corpus_and_warehouse_it_serves(served, page):
    url, folder = served
    page.goto(f"{url}/assets/sentences", wait_until="networkidle")
    dismiss_dialogs(page)
    page.get_by_text("warehouse (DUCKDB_PATH)").first.wait_for(timeout=60_000)
    body = page.inner_text("body")
    assert str(folder / "w.duckdb") in body and SAMPLE_CORPUS in body


def test_report_shows_labelled_maps_with_a_legend(served, browser, screenshot_dir):
    _, folder = served
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    page.goto((folder / "w.report.html").as_uri())
    assert page.locator("svg text.label").count() >= len(SCHEDULED)  # topic labels on every map
    assert page.locator("ul.legend").count() == len(SCHEDULED)  # make run: the scheduled clusterings
    assert page.locator("svg circle title").count() > 0  # sentences on hover
    page.screenshot(path=str(screenshot_dir / "report.png"))
    page.close()


def test_backfill_of_file_partitions_from_the_asset_page(browser, tmp_path):
    """SENTENCE_PARTITIONS=files: Materialize on the asset page, partitions "All", "Launch backfill"; the daemon
    runs the backfill and every file's sentences and vectors land in DuckDB."""
    import dagster as dg
    import duckdb
    import pandas as pd
    from dagster._core.execution.backfill import BulkActionStatus

    home, corpus = tmp_path / "home", tmp_path / "corpus"
    home.mkdir()
    corpus.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    sample = pd.read_csv(f"{SAMPLE_CORPUS}/sample_corpus.csv")
    sample.iloc[:100].to_csv(corpus / "first.csv", index=False)
    sample.iloc[100:].to_csv(corpus / "second.csv", index=False)
    env = {**os.environ, "DAGSTER_HOME": str(home), "DUCKDB_PATH": str(tmp_path / "w.duckdb"),
           "SENTENCES_PATH": str(corpus), "EMBEDDING_DEVICE": "cpu", "SENTENCE_PARTITIONS": "files"}
    instance = dg.DagsterInstance.from_config(str(home))
    instance.add_dynamic_partitions("sentence_files", ["first.csv", "second.csv"])
    # The files' sentences are already in the warehouse (not yet embedded), so the file sensor, which the daemon
    # also runs, launches nothing (no file changed since it was read) and only the backfill writes.
    warehouse = DuckDBWarehouse(database=env["DUCKDB_PATH"])
    for source in ("first.csv", "second.csv"):
        read = open_corpus(str(corpus), partition=source)
        warehouse.replace_sentences(read, source, read.fingerprints)
    url, server = serve(env)
    daemon = subprocess.Popen([sys.executable, "-m", "dagster._daemon", "run", "-m", "dagster_project.definitions"],
                              cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    page = browser.new_page(viewport={"width": 1800, "height": 1200})
    try:
        page.goto(f"{url}/assets/sentence_embeddings", wait_until="networkidle")
        dismiss_dialogs(page)
        page.get_by_role("button", name="Materialize", exact=False).first.click()
        confirm = page.get_by_role("button", name="Confirm")  # "upstream not materialized yet": it is selected too
        launch = page.get_by_role("button", name="Launch backfill")
        confirm.or_(launch).first.wait_for(timeout=30_000)
        if confirm.is_visible():
            confirm.click()
        page.get_by_role("button", name="All", exact=True).click()
        launch.click()
        deadline = time.time() + 600
        while time.time() < deadline:
            backfills = instance.get_backfills()
            if backfills and backfills[0].status != BulkActionStatus.REQUESTED:
                break
            time.sleep(2)
        backfill = instance.get_backfills()[0]
        assert backfill.status == BulkActionStatus.COMPLETED_SUCCESS, backfill.status
        runs = instance.get_runs(filters=dg.RunsFilter(tags={"dagster/backfill": backfill.backfill_id}))
        assert sorted((r.tags["dagster/partition"], r.status.value) for r in runs) == [
            ("first.csv", "SUCCESS"), ("second.csv", "SUCCESS")]
        assert len(instance.get_runs()) == 2  # the backfill's, no other
        page.screenshot(path=str(tmp_path / "ui_backfill.png"))
    finally:
        daemon.terminate()
        server.terminate()
        daemon.wait(timeout=60)
        server.wait(timeout=30)
    with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as conn:
        per_file = dict(conn.execute("SELECT source, count(*) FROM sentences GROUP BY ALL").fetchall())
        unembedded = conn.execute("SELECT count(*) FROM sentences s ANTI JOIN embedding_cache c "
                                  "ON c.text_hash = s.text_hash").fetchall()[0][0]
    assert per_file == {"first.csv": 100, "second.csv": len(sample) - 100} and unembedded == 0
