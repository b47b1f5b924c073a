"""Provider metadata read by Airflow's ProvidersManager (entry point ``apache_airflow_provider``).

The connection form is declared here (``conn-fields`` / ``ui-field-behaviour``), the
Airflow >= 3.2 way: the API server builds the form from this dict without importing
the hook or WTForms.
"""

from __future__ import annotations

from typing import Any


def _number_field(label: str, description: str, default: float) -> dict[str, Any]:
    return {
        "label": label,
        "description": description,
        "schema": {"type": ["number", "null"], "minimum": 0, "default": default},
    }


def get_provider_info() -> dict[str, Any]:
    """Return the provider's metadata: name, hooks, operators and the ``billbee`` connection type."""
    return {
        "package-name": "airflow-provider-billbee",
        "name": "Billbee",
        "description": "Create and read customers in `Billbee <https://www.billbee.io>`__, "
        "with schema validation, built-in rate limiting and a local Billbee sandbox.",
        "integrations": [
            {
                "integration-name": "Billbee",
                "external-doc-url": "https://app.billbee.io/swagger/ui/index",
                "tags": ["service"],
            }
        ],
        "hooks": [{"integration-name": "Billbee", "python-modules": ["billbee_provider.hooks.billbee"]}],
        "operators": [
            {
                "integration-name": "Billbee",
                "python-modules": [
                    "billbee_provider.operators.customers",
                    "billbee_provider.operators.imports",
                ],
            }
        ],
        "plugins": [
            {"name": "billbee", "plugin-class": "billbee_provider.plugins.billbee_panel.BillbeePanelPlugin"}
        ],
        "config": {
            "billbee": {
                "description": 'Settings of the Billbee provider: its "Billbee request" panel, and where '
                "bulk imports keep their files.",
                "options": {
                    "allow_test_requests": {
                        "description": "Allow the panel's Test request button to send a task's body to "
                        "Billbee. Each test send creates a real customer, so this is off by default, like "
                        "[core] test_connection. Users also need edit permission on the DAG and on "
                        "connections, and must type the host name to send to a non-loopback host.",
                        "version_added": "0.1.0",
                        "type": "boolean",
                        "example": "True",
                        "default": "False",
                    },
                    "import_storage": {
                        "description": "Where bulk-import runs keep their files (source snapshot, staging, "
                        "rejects, ledger, results, summary): each run uses "
                        "<import_storage>/<dag_id>/<run_id> unless its output_dir param is given. "
                        "A local path, a file:// URL, or an "
                        "object-storage URL with its Airflow connection (s3://aws_conn@bucket/prefix, "
                        "gs://gcp_conn@bucket/prefix). Empty: a folder under AIRFLOW_HOME/billbee-imports, "
                        "which only works when every task runs on one machine; under executors that can "
                        "run tasks on different machines (Celery, Kubernetes, ...) the import then refuses "
                        "to start. A local path here must be a folder every worker shares.",
                        "version_added": "0.1.0",
                        "type": "string",
                        "example": "s3://aws_default@my-bucket/billbee-imports",
                        "default": "",
                    },
                },
            }
        },
        "connection-types": [
            {
                "connection-type": "billbee",
                "hook-class-name": "billbee_provider.hooks.billbee.BillbeeHook",
                "hook-name": "Billbee",
                "ui-field-behaviour": {
                    "hidden-fields": ["port", "schema"],
                    "relabeling": {"login": "Billbee user name / e-mail", "password": "API password"},
                    "placeholders": {
                        "host": "https://app.billbee.io",
                        "login": "shop-owner@example.com",
                        "password": "API password from Billbee > Settings > API",
                    },
                },
                "conn-fields": {
                    "api_key": {
                        "label": "API key",
                        "description": "Sent as X-Billbee-Api-Key. Identifies your app; request "
                        "one from Billbee support.",
                        "schema": {"type": ["string", "null"], "format": "password"},
                    },
                    "connect_timeout": _number_field(
                        "Connect timeout (s)", "Seconds to wait for a connection to Billbee.", 10
                    ),
                    "read_timeout": _number_field(
                        "Read timeout (s)", "Seconds to wait for Billbee's answer.", 60
                    ),
                    "endpoint_rate_limit": _number_field(
                        "Requests/s per endpoint",
                        "Billbee allows 2; change only if Billbee granted your account another limit.",
                        2,
                    ),
                    "account_rate_limit": _number_field(
                        "Requests/s per account", "Billbee allows 10 per API key + user.", 10
                    ),
                    "verify_tls": {
                        "label": "Verify TLS certificate",
                        "description": "Leave on. Off only for debugging; every run then logs a warning.",
                        "schema": {"type": ["boolean", "null"], "default": True},
                    },
                    "ca_bundle": {
                        "label": "CA bundle file",
                        "description": "CA bundle to verify Billbee against (e.g. a company proxy's CA).",
                        "schema": {"type": ["string", "null"]},
                    },
                    "max_retries": _number_field(
                        "Max retries",
                        "Retries on 429, 503 and network errors (never for a create whose answer was lost).",
                        5,
                    ),
                },
            }
        ],
    }
