"""Operators of the bulk customer import: extract -> validate -> create.

Each stage writes files into the run's output directory and passes only counts and
paths through XCom, never rows (personal data, and XComs are not meant to be large):

* ``BillbeeExtractCustomersOperator`` snapshots a CSV/JSONL file into the output dir, so
  that a retried or resumed run reads exactly the rows its ledger refers to;
* ``BillbeeExtractCustomersSqlOperator`` reads a query through any DbApiHook in chunks;
* ``BillbeeValidateCustomersOperator`` maps rows to bodies, validates them and writes
  the staging file and the rejects report; above ``max_rejects`` it fails before
  anything is sent;
* ``BillbeeCreateCustomersOperator`` creates the staged customers at Billbee's rate
  limit, exactly once, with a ledger that makes retries and re-runs safe.

Locations are local paths, ``file://`` URLs, or object-store URLs that Airflow's
``ObjectStoragePath`` understands (``s3://<conn_id>@bucket/prefix``). The Billbee and
file-format logic lives in Airflow-free modules imported inside ``execute``.

Each task has its own module (``extract``, ``validate``, ``create``, ``report``); this
module is the public import path of all of them.
"""

from __future__ import annotations

from billbee_provider.operators.create import DEFAULT_POOL, BillbeeCreateCustomersOperator
from billbee_provider.operators.extract import (
    BillbeeExtractCustomersOperator,
    BillbeeExtractCustomersSqlOperator,
    db_hook,
    source_format,
)
from billbee_provider.operators.report import BillbeeReportImportOperator
from billbee_provider.operators.run_files import output_location, to_location
from billbee_provider.operators.validate import BillbeeValidateCustomersOperator, parse_max_rejects

__all__ = [
    "DEFAULT_POOL",
    "BillbeeCreateCustomersOperator",
    "BillbeeExtractCustomersOperator",
    "BillbeeExtractCustomersSqlOperator",
    "BillbeeReportImportOperator",
    "BillbeeValidateCustomersOperator",
    "db_hook",
    "output_location",
    "parse_max_rejects",
    "source_format",
    "to_location",
]
