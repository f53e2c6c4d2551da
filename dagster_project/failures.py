"""The failed steps of the latest run in the Dagster instance (`DAGSTER_HOME`), one line each, then where the
whole log is: python -m dagster_project.failures LOG

The messages come from the run's event records, not from the printed log (whose lines interleave under load);
the log's tail is printed only when the instance holds no failed step (the run could not start)."""

import sys
from pathlib import Path

from dagster import DagsterEventType, DagsterInstance

FAILURE_PREFIX = "dagster._core.definitions.events.Failure: "


def step_failures(instance: DagsterInstance) -> list[tuple[str, str]]:
    """(step, first line of its error) per failed step of the instance's latest run."""
    runs = instance.get_runs(limit=1)
    if not runs:
        return []
    found = []
    for entry in instance.all_logs(runs[0].run_id, of_type=DagsterEventType.STEP_FAILURE):
        error = entry.dagster_event.event_specific_data.error
        message = (error.message if error else "").strip().splitlines() or [""]
        found.append((entry.dagster_event.step_key, message[0].removeprefix(FAILURE_PREFIX)))
    return found


def main() -> None:
    path = Path(sys.argv[1])
    with DagsterInstance.get() as instance:
        found = step_failures(instance)
    for step, message in found:
        print(f"{step} failed: {message}", file=sys.stderr)
    if not found:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        print("\n".join(lines[-60:]), file=sys.stderr)
    print(f"(whole log: {path})", file=sys.stderr)


if __name__ == "__main__":
    main()
