"""`make run` on a path that matches nothing: the step's one-line message first, from the run's event records."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_make_run_on_a_missing_path_names_it_in_its_first_line(tmp_path):
    missing = tmp_path / "nowhere" / "texts.csv"
    env = {k: v for k, v in os.environ.items() if k not in ("DAGSTER_HOME", "DUCKDB_PATH", "SENTENCES_PATH")}
    made = subprocess.run(["make", "-s", "run", f"VENV={sys.prefix}", f"DUCKDB_PATH={tmp_path / 'w.duckdb'}",
                           f"SENTENCES_PATH={missing}"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600, check=False)
    assert made.returncode != 0
    first, *rest = made.stderr.splitlines()
    assert first.startswith("sentences failed: ") and f"SENTENCES_PATH '{missing}' matches no readable file" in first
    assert rest[0] == f"(whole log: {tmp_path / 'w.dagster' / 'run.log'})"
