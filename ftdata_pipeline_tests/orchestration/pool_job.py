"""A two-step job whose first step redacts with the PII worker pool, for the executor test.

Run as a module: executes the job with Dagster's multiprocess executor (every step in its own
child process) on the instance in $DAGSTER_HOME and prints the run's status and event times.
"""

from __future__ import annotations

import json
import sys

import polars as pl
from dagster import DagsterInstance, execute_job, job, op, reconstructable

from ftdata_pipeline.config.models import RedactConfig
from ftdata_pipeline.stages.pii.engine import worker_pools
from ftdata_pipeline.stages.redact import get_redactor, redact

# Two workers and no in-process threshold: the step must start a real pool.
POOL_CFG = RedactConfig(workers=2, parallel_min_texts=1, batch_size=8)
FAIL_AFTER_POOL = "FTDATA_TEST_FAIL_AFTER_POOL"


@op
def redact_with_pool() -> int:
    import os

    frame = pl.DataFrame(
        {
            "record_id": [f"r{i}" for i in range(64)],
            "text": [f"Ticket {i}: call Maria Lopez at 555-0{i:03d} or m{i}@example.com"
                     for i in range(64)],
        }
    )
    # as the redacted asset does: the step owns the pool
    with worker_pools():
        result = redact(frame.lazy(), POOL_CFG, get_redactor(POOL_CFG))
        if os.environ.get(FAIL_AFTER_POOL):
            raise RuntimeError("step failed while its pool was up")
    return result.rows_kept


@op
def after_redaction(rows: int) -> int:
    return rows


@job
def pool_job():
    after_redaction(redact_with_pool())


def main() -> None:
    with DagsterInstance.get() as instance:
        result = execute_job(reconstructable(pool_job), instance=instance, raise_on_error=False)
        records = instance.all_logs(result.run_id)
        events = [
            {"step": r.step_key, "type": r.dagster_event.event_type_value, "t": r.timestamp}
            for r in records
            if r.dagster_event is not None
        ]
        json.dump({"success": result.success, "events": events}, sys.stdout)


if __name__ == "__main__":
    main()
