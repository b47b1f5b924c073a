"""50 single creates at once: a mapped ``BillbeeCreateCustomerOperator``, spread over the workers.

Test DAG of ``make test-cluster`` (tests/cluster): each mapped task is its own process on
either worker, paced on its own (2 creates/s per process), so together they exceed
Billbee's 2 creates/s per account and meet 429s. The client waits them out and a task
that still fails is retried by Airflow; a retry looks its customer up by e-mail first
(``if_exists="skip"``), so every customer is created once.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import dag

from billbee_provider.operators.customers import BillbeeCreateCustomerOperator

#: How many customers the DAG creates.
COUNT = 50


def customer(number: int) -> dict[str, object]:
    """A valid customer body with a unique e-mail."""
    return {
        "Name": f"Cluster Kunde {number:02d}",
        "Email": f"cluster.kunde{number:02d}@example.de",
        "Type": 0,
        "Address": {
            "FirstName": "Cluster",
            "LastName": f"Kunde {number:02d}",
            "Street": "Hauptstraße",
            "Housenumber": str(number),
            "Zip": "10115",
            "City": "Berlin",
            "CountryCode": "DE",
            "AddressType": 1,
        },
    }


@dag(
    dag_id="cluster_mapped_creates",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_tasks=16,
    tags=["billbee", "test"],
    doc_md=__doc__,
)
def cluster_mapped_creates() -> None:
    """One mapped create task over :data:`COUNT` customers."""
    BillbeeCreateCustomerOperator.partial(
        task_id="create", retries=3, retry_delay=timedelta(seconds=2)
    ).expand(customer=[customer(n) for n in range(1, COUNT + 1)])


cluster_mapped_creates()
