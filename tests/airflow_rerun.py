"""Run the tasks of an existing DAG run again, as Clear in the UI and the scheduler would.

``python -m tests.airflow_rerun <dag_id> <logical date>`` (with ``AIRFLOW_HOME`` and the
connections in the environment): ``Dag.test`` for that logical date, except that it
takes the existing run instead of deleting it and creating a new one. Everything else is
Airflow's own path: ``Dag.test`` clears the run's task instances with ``clear_dags`` ->
``clear_task_instances`` (the function behind Clear), the run goes back to running as
after a Clear, and the tasks are scheduled with ``try_number + 1`` and executed in
process through the execution API. ``airflow dags test`` cannot do this in 3.3: it
deletes a run of the same logical date (``get_or_create_dagrun``) and starts at try 1;
``airflow tasks test`` records nothing and keeps the try number.
"""

from __future__ import annotations

import sys
from typing import Any
from unittest import mock


def main(argv: list[str]) -> int:
    """Entry point: ``argv[1]`` the DAG id, ``argv[2]`` the logical date of the existing run."""
    import os

    from airflow.dag_processing.dagbag import DagBag
    from airflow.models import dagrun
    from airflow.sdk import timezone
    from airflow.utils.state import DagRunState
    from sqlalchemy import select

    dag_id, logical_date = argv[1], timezone.parse(argv[2])

    def existing_run(*, dag: Any, session: Any, **_: Any) -> Any:
        run = session.scalar(
            select(dagrun.DagRun).where(
                dagrun.DagRun.dag_id == dag.dag_id, dagrun.DagRun.logical_date == logical_date
            )
        )
        assert run is not None, f"no run of {dag.dag_id} at {logical_date}"
        run.dag = dag  # what create_dagrun attaches to a new run
        run.state = DagRunState.RUNNING  # Clear queues the run; the scheduler starts it
        session.commit()
        return run

    dag = DagBag(dag_folder=os.environ["AIRFLOW__CORE__DAGS_FOLDER"]).dags.get(dag_id)
    assert dag is not None, dag_id
    with mock.patch.object(dagrun, "get_or_create_dagrun", existing_run):
        run = dag.test(logical_date=logical_date)
    print(f"rerun state={run.state}", flush=True)
    return 0 if run.state == DagRunState.SUCCESS else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
