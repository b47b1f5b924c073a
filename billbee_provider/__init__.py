"""Apache Airflow provider for Billbee: connection, hook, operators, schema and sandbox.

The Billbee knowledge (configuration, envelope, errors, throttle, schema, client) lives
in modules that do not import Airflow; :mod:`billbee_provider.hooks` and
:mod:`billbee_provider.operators` adapt them to Airflow.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

DISTRIBUTION = "airflow-provider-billbee"

try:
    __version__ = version(DISTRIBUTION)
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

__all__ = ["DISTRIBUTION", "__version__"]
