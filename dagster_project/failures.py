"""The failed steps of a `dagster asset materialize` log, one line each, before the log's tracebacks:
python -m dagster_project.failures LOG"""

import re
import sys
from pathlib import Path

STEP_FAILURE = re.compile(r' - STEP_FAILURE - Execution of step "([^"]+)" failed')
FAILURE_PREFIX = "dagster._core.definitions.events.Failure: "


def step_failures(lines: list[str]) -> list[tuple[str, str]]:
    """(step, message) per failed step: the first line of the error Dagster logs after the step's failure."""
    found = []
    for i, line in enumerate(lines):
        match = STEP_FAILURE.search(line)
        if match:
            message = next((text.strip() for text in lines[i + 1:] if text.strip()), "")
            found.append((match.group(1), message.removeprefix(FAILURE_PREFIX)))
    return found


def main() -> None:
    path = Path(sys.argv[1])
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    found = step_failures(lines)
    for step, message in found:
        print(f"{step} failed: {message}", file=sys.stderr)
    if not found:
        print("\n".join(lines[-60:]), file=sys.stderr)
    print(f"(whole log: {path})", file=sys.stderr)


if __name__ == "__main__":
    main()
