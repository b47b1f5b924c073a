"""The "Billbee request" panel: a tab of the task-instance view in the Airflow UI.

:mod:`.request_view` and :mod:`.connection_test` hold what the panel knows without
Airflow; :mod:`.app` is the FastAPI app the provider's plugin mounts on the API server,
:mod:`.task_records` reads a task instance's rendered fields, XComs and audit records.
"""
