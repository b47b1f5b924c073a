"""The last task of a customer import: one report of what the validate and create tasks did.

The core (:mod:`billbee_provider.imports.report`) merges the two tasks' XCom summaries,
writes ``summary.json`` into the run's output directory and formats the table; this
operator only takes the XComs in and puts the table into the task log, line by line,
through the task's logger (so it lands in the log view in order, not after "Done.").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from billbee_provider.operators.run_files import (
    SUMMARY_FILE,
    output_location,
    push_run_files,
    run_files,
    to_location,
)

if TYPE_CHECKING:
    from airflow.sdk import Context, XComArg


class BillbeeReportImportOperator(BaseOperator):
    """Write ``summary.json`` and log the import's summary table.

    :param validated: the validate task's XCom (``validate.output``).
    :param created: the create task's XCom (``create.output``).
    :param output_dir: the run's output directory (templated; the same as the other tasks').

    Returns (XCom) ``{"summary": <path of summary.json>, "counts": {status: rows}}``: counts
    and a path, never rows. Pushes the run's file locations as the XCom ``billbee_files``
    when it starts (the rejects file and ledger as the create task names them).
    """

    template_fields: Sequence[str] = ("validated", "created", "output_dir")
    ui_color = "#e8f4e8"

    def __init__(
        self,
        *,
        validated: Mapping[str, Any] | XComArg,
        created: Mapping[str, Any] | XComArg,
        output_dir: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.validated = validated
        self.created = created
        self.output_dir = output_dir

    def execute(self, context: Context) -> dict[str, Any]:
        """Merge the summaries, write ``summary.json`` and log the table."""
        from billbee_provider.imports.report import build_summary, format_table, write_summary

        validated: Mapping[str, Any] = self.validated  # type: ignore[assignment]  # resolved XComArg
        created: Mapping[str, Any] = self.created  # type: ignore[assignment]
        out = output_location(self.output_dir, context)
        rejects = created.get("rejects_path") or validated.get("rejects")
        push_run_files(context, run_files(out, rejects=rejects, ledger=created.get("ledger_path")))
        summary = build_summary(validated, created)
        target = f"{out}/{SUMMARY_FILE}"
        write_summary(to_location(target), summary)
        self.log.info("Billbee import summary (%s):", target)
        for line in format_table(summary).splitlines():
            self.log.info("%s", line)
        return {"summary": target, "counts": summary["counts"]}
