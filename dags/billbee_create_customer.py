"""Create one Billbee customer: validate the body, then create it.

Trigger it from the UI (the form is pre-filled with an example customer), or run
``airflow dags test billbee_create_customer -c "$(cat conf.json)"``. An invalid
customer fails the ``validate`` task and nothing is sent. Clearing a finished ``create``
runs it as a new try, which looks the customer up by e-mail before creating it (param
``if_exists``). Only light modules are imported here; the operators import
requests/jsonschema when they run.
"""

from __future__ import annotations

from airflow.sdk import Param, dag
from example_dag_args import EXAMPLE_DAG_ARGS

from billbee_provider.operators.customers import (
    BillbeeCreateCustomerOperator,
    BillbeeValidateCustomerOperator,
)

EXAMPLE_CUSTOMER = {
    "Name": "Jürgen Weiß",
    "Email": "juergen.weiss@example.de",
    "Type": 0,
    "Tel1": "+49 30 1234567",
    "Address": {
        "FirstName": "Jürgen",
        "LastName": "Weiß",
        "Street": "Schönhauser Allee",
        "Housenumber": "42a",
        "Zip": "10435",
        "City": "Berlin",
        "CountryCode": "DE",
        "AddressType": 1,
    },
}

# tojson keeps the body a JSON object end to end (umlauts are escaped and come back exact).
CUSTOMER_TEMPLATE = "{{ params.customer | tojson }}"


@dag(
    dag_id="billbee_create_customer",
    **EXAMPLE_DAG_ARGS,
    params={
        "customer": Param(
            EXAMPLE_CUSTOMER,
            type="object",
            title="Customer",
            description=(
                "The customer to create, with Billbee's field names: Name, Email, Type (0 = end "
                "customer, 1 = business customer), Tel1, and an Address with FirstName, LastName, "
                "Street, Housenumber, Zip, City and CountryCode (DE, AT, CH, ...). The task's "
                "'Billbee request' tab shows it as Billbee receives it, with any problem."
            ),
        ),
        "dry_run": Param(
            False,
            type="boolean",
            title="Dry run",
            description=(
                "Tick to check the customer and show the request on the 'Billbee request' tab "
                "without creating anything in Billbee."
            ),
        ),
        "if_exists": Param(
            "skip",
            type="string",
            enum=["skip", "fail", "create"],
            title="If the customer exists",
            description=(
                "Only matters when the create task runs again (a retry, or Clear in the task view): "
                "it first looks the customer up by e-mail. skip (recommended): keep the customer "
                "created before and report its Id; fail: stop with an error; create: create a "
                "second customer anyway."
            ),
        ),
    },
    doc_md=__doc__,
)
def billbee_create_customer() -> None:
    """Validate the customer from the run's params, then create it in Billbee."""
    validate = BillbeeValidateCustomerOperator(task_id="validate", customer=CUSTOMER_TEMPLATE)
    create = BillbeeCreateCustomerOperator(
        task_id="create",
        customer=CUSTOMER_TEMPLATE,
        dry_run="{{ params.dry_run }}",
        if_exists="{{ params.if_exists }}",
    )
    validate >> create


billbee_create_customer()
