"""Object storage for the import: the run folder setting, the object ledger, S3 through moto_server."""
