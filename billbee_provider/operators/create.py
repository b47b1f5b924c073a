"""The create task of a customer import: staged bodies -> Billbee, exactly once, at the rate limit."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from billbee_provider.operators.customers import as_bool
from billbee_provider.operators.run_files import (
    output_location,
    push_run_files,
    run_files,
    to_location,
    with_outputs,
)

if TYPE_CHECKING:
    from airflow.sdk import Context


#: Pool that keeps one account's imports from running side by side (see docs/import.md).
DEFAULT_POOL = "billbee_api"
#: Airflow's pool for tasks that name none (``airflow.sdk.bases.operator.DEFAULT_POOL_NAME``).
DEFAULT_POOL_NAME = "default_pool"


class BillbeeCreateCustomersOperator(BaseOperator):
    """Create the staged customers in Billbee at the rate limit, exactly once.

    :param staging: the validate task's staging file (templated).
    :param rejects: the validate task's rejects file, to which Billbee's refusals are added (templated).
    :param output_dir: the run's output directory (templated).
    :param ledger: where the per-row ledger lives (templated; default ``<output_dir>/ledger.jsonl``).
        A retry or re-run with the same ledger never sends a row twice.
    :param if_exists: ``skip`` (default), ``create`` or ``fail``, matched by e-mail (templated).
    :param dry_run: decide everything but send nothing (templated).
    :param max_in_flight: concurrent requests; about rate x answer time is needed. Default:
        enough for answers of up to 4 s at the connection's ``endpoint_rate_limit`` (8 at
        Billbee's 2/s, at most 64; see :func:`~billbee_provider.imports.send.default_in_flight`).
    :param billbee_conn_id: the Billbee connection (templated).

    The default ``pool`` is ``billbee_api``: create it with one slot per Billbee account.
    Returns (XCom) the summary: counts by status, elapsed seconds, rate, output paths.
    When it starts it pushes the run's file locations as the XCom ``billbee_files``
    (:func:`~.run_files.run_files`) and keeps ``progress.json`` in the output directory
    up to date while it runs.
    """

    template_fields: Sequence[str] = (
        "staging",
        "rejects",
        "output_dir",
        "ledger",
        "if_exists",
        "is_dry_run",
        "billbee_conn_id",
    )
    ui_color = "#fde9d4"

    def __init__(
        self,
        *,
        staging: str,
        rejects: str | None = None,
        output_dir: str | None = None,
        ledger: str | None = None,
        if_exists: str = "skip",
        dry_run: bool | str = False,
        max_in_flight: int | None = None,
        billbee_conn_id: str = "billbee_default",
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("pool", DEFAULT_POOL)
        super().__init__(**with_outputs(kwargs))
        self.staging = staging
        self.rejects = rejects
        self.output_dir = output_dir
        self.ledger = ledger
        self.if_exists = if_exists
        self.is_dry_run = dry_run
        self.max_in_flight = max_in_flight
        self.billbee_conn_id = billbee_conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        """Run the import and return its summary."""
        from billbee_provider.api.errors import BillbeeAuthError, BillbeeConfigError
        from billbee_provider.hooks.billbee import BillbeeHook
        from billbee_provider.imports.create import import_customers
        from billbee_provider.imports.ledger import Ledger
        from billbee_provider.imports.plan import ExistingCustomersError

        out = output_location(self.output_dir, context)
        files = run_files(out, rejects=self.rejects, ledger=self.ledger)
        push_run_files(context, files)
        self._check_pool()
        client = BillbeeHook(billbee_conn_id=self.billbee_conn_id).client
        try:
            with Ledger(to_location(files["ledger"])) as ledger:
                summary = import_customers(
                    to_location(self.staging),
                    client=client,
                    ledger=ledger,
                    results_path=to_location(files["results"]),
                    rejects_path=to_location(files["rejects"]),
                    if_exists=self.if_exists,  # type: ignore[arg-type]  # checked by import_customers
                    dry_run=as_bool(self.is_dry_run, "dry_run"),
                    max_in_flight=self.max_in_flight,
                    logger=self.log,
                    progress_path=to_location(files["progress"]),
                )
        except (ExistingCustomersError, BillbeeAuthError, BillbeeConfigError, ValueError) as exc:
            raise AirflowFailException(str(exc)) from None
        failed = summary.counts.get("failed", 0)
        if failed:
            # Billbee did not process these rows (outage, throttling); the ledger makes a
            # task retry safe, so let Airflow's retries send them again.
            raise AirflowException(
                f"{failed} row(s) could not be sent (Billbee unreachable or throttled past all "
                f"retries); results: {summary.results_path}. A retry of this task sends only them."
            )
        return summary.as_dict()

    def _check_pool(self) -> None:
        """Say what keeps two imports of this account apart across machines: the pool.

        The pool must have one slot per Billbee account (docs/import.md "The pool"): with
        two slots, two imports of one account ran side by side on a two-worker cluster
        and created 29 duplicates (the account lock only works on one machine). A task
        cannot read its pool's size in Airflow 3: the Task SDK blocks the ORM
        (``BlockedDBSession``), the Execution API has no pool route and ``TIRunContext``
        carries no pool, and the public REST API (``/api/v2/pools/{name}``) needs an
        authenticated user. So the size is named as a one-line reminder; only a task
        outside any Billbee pool (``default_pool``) is a certain problem and warned of.
        """
        if self.pool == DEFAULT_POOL_NAME:
            self.log.warning(
                "this create task runs in %r, not in a pool with one slot per Billbee account: two "
                "imports of one account on different workers can overlap and create duplicates",
                self.pool,
            )
            return
        self.log.info(
            "pool %r must have exactly 1 slot per Billbee account (a task cannot read its pool's size; "
            "check with: airflow pools get %s): with more, imports of one account on different "
            "workers can overlap and create duplicates",
            self.pool,
            self.pool,
        )
