"""The validate task of a customer import: rows -> Billbee bodies -> staging file and rejects."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from billbee_provider.operators.extract import (
    refuse_same_file,
    source_format,
    unreadable_source_fails,
)
from billbee_provider.operators.run_files import (
    REJECTS_FILE,
    STAGING_FILE,
    output_location,
    push_run_files,
    run_files,
    to_location,
    with_outputs,
)

if TYPE_CHECKING:
    from airflow.sdk import Context

    from billbee_provider.imports.validate import PrepareSummary


class BillbeeValidateCustomersOperator(BaseOperator):
    """Turn source rows into Billbee bodies, validate them, write staging and rejects files.

    :param source: the extracted file (templated; e.g. the extract task's ``path``).
    :param source_format: ``csv`` or ``jsonl``; default from the extension.
    :param encoding: the source's encoding (templated): ``auto`` (the default: UTF-8 with
        or without BOM, UTF-16/32 by its BOM), ``cp1252`` for Excel's "CSV
        (Trennzeichen-getrennt)" (refused if the file is really UTF-8; ``cp1252!`` forces
        it), or any codec name.
    :param delimiter: CSV delimiter (templated): ``auto`` (the default: the most frequent
        of ``,``, ``;`` and tab in the header), ``tab``, or one character.
    :param template: a body template whose leaves are Jinja over ``row`` (not an Airflow
        template field: it is rendered per row, not per task). Without it, CSV headers are
        Billbee's dotted field paths and JSONL lines are Billbee bodies.
    :param required_fields: dotted paths every row must have, e.g. ``["Email"]``.
    :param extra_schema: a JSON Schema every body must meet as well.
    :param max_rejects: most rejects allowed: a count, or a fraction below 1 (templated).
    :param output_dir: the run's output directory (templated).

    Returns (XCom) counts and the paths of ``staging.jsonl`` and ``rejects.csv``; pushes
    the run's file locations as the XCom ``billbee_files`` when it starts.
    """

    template_fields: Sequence[str] = (
        "source",
        "source_format",
        "encoding",
        "delimiter",
        "max_rejects",
        "output_dir",
    )

    def __init__(
        self,
        *,
        source: str,
        source_format: str | None = None,
        encoding: str | None = None,
        delimiter: str | None = None,
        template: Mapping[str, Any] | str | None = None,
        required_fields: Sequence[str] = (),
        extra_schema: Mapping[str, Any] | None = None,
        max_rejects: int | float | str | None = None,
        output_dir: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**with_outputs(kwargs))
        self.source = source
        self.source_format = source_format
        self.encoding = encoding
        self.delimiter = delimiter
        self.body_template = template
        self.required_fields = list(required_fields)
        self.extra_schema = extra_schema
        self.max_rejects = max_rejects
        self.output_dir = output_dir

    def execute(self, context: Context) -> dict[str, Any]:
        """Validate every row; fail before anything is sent when there are too many rejects.

        :raises AirflowFailException: for too many rejects, and for what a retry cannot
            fix about the source (see :func:`~.extract.unreadable_source_fails`).
        """
        out = output_location(self.output_dir, context)
        paths = {"staging": f"{out}/{STAGING_FILE}", "rejects": f"{out}/{REJECTS_FILE}"}
        push_run_files(context, run_files(out, rejects=paths["rejects"]))
        for path in paths.values():
            refuse_same_file(self.source, path, out)
        with unreadable_source_fails(self.source):
            summary = self._prepare(paths)
        self.log.info(
            "Validated %d row(s): %d valid, %d rejected (rejects: %s)",
            summary.rows_read,
            summary.valid,
            summary.rejected,
            paths["rejects"],
        )
        return {**summary.as_dict(), **paths}

    def _prepare(self, paths: dict[str, str]) -> PrepareSummary:
        from billbee_provider.imports.validate import TooManyRejects, prepare

        try:
            return prepare(
                self._rows(),
                self._to_body(),
                staging=to_location(paths["staging"]),
                rejects=to_location(paths["rejects"]),
                required_fields=self.required_fields,
                extra_schema=self.extra_schema,
                max_rejects=parse_max_rejects(self.max_rejects),
            )
        except TooManyRejects as exc:
            # The message gives the counts and the rejects file.
            raise AirflowFailException(str(exc)) from None

    def _rows(self) -> Any:
        from billbee_provider.imports.extract import iter_rows
        from billbee_provider.imports.extract_csv import delimiter_setting

        fmt = source_format(self.source, self.source_format)
        try:
            delimiter = delimiter_setting(self.delimiter)
        except ValueError as exc:
            raise AirflowFailException(str(exc)) from None
        return iter_rows(to_location(self.source), fmt, encoding=self.encoding or None, delimiter=delimiter)

    def _to_body(self) -> Any:
        from billbee_provider.customers.mapping import body_from_dotted
        from billbee_provider.customers.template import TemplateError, template_from_json

        if self.body_template is not None:
            try:
                template = template_from_json(self.body_template)
            except TemplateError as exc:
                raise AirflowFailException(f"the body template is invalid: {exc}") from None
            return lambda row: template.render_row(row.fields)
        if source_format(self.source, self.source_format) == "jsonl":
            return lambda row: (dict(row.fields), [])
        return lambda row: body_from_dotted(row.fields)


def parse_max_rejects(value: int | float | str | None) -> int | float | None:
    """``max_rejects`` as rendered: ``""``/``None`` -> no limit, ``"5"`` -> 5, ``"0.1"`` -> 0.1."""
    if value is None or isinstance(value, int | float):
        return value
    text = str(value).strip()
    if text.lower() in ("", "none", "null"):
        return None
    try:
        return int(text) if text.isdigit() else float(text)
    except ValueError:
        raise AirflowFailException(f"max_rejects must be a count or a fraction, got {value!r}") from None
