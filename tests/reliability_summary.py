"""Print the figures of the last fault-test run, for docs/reliability.md.

    python tests/reliability_summary.py

Each fault, control, parallel and broker test writes what it injected and what it checked to
artifacts/reliability/<test>.json (see `tests.faults.Ledger`); this adds them up.
"""

from __future__ import annotations

import json
from pathlib import Path

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts" / "reliability"


def summary() -> str:
    records = [json.loads(path.read_text()) for path in sorted(ARTIFACTS.glob("*.json"))]
    faults: dict[str, int] = {}
    for record in records:
        for kind, count in record["faults"].items():
            faults[kind] = faults.get(kind, 0) + count
    lines = [f"{count:>7}  {kind}" for kind, count in sorted(faults.items())]
    lines.append(f"{sum(faults.values()):>7}  faults injected, in {len(records)} tests")
    lines.append(f"{sum(r['jobs_completed'] for r in records):>7}  jobs completed")
    lines.append(f"{sum(r['rows_checked'] for r in records):>7}  rows compared with a clean run")
    lines.append(f"{sum(r['rows_lost'] for r in records):>7}  rows lost")
    lines.append(f"{sum(r['rows_extra'] for r in records):>7}  rows duplicated or extra")
    lines.append("time to recover (fault to job end), per test:")
    for record in records:
        for seconds in record.get("recovery_seconds", []):
            lines.append(f"{seconds:>7.1f}s {record['scenario']}")
    return "\n".join(lines)


if __name__ == "__main__":
    print(summary())
