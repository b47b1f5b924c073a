"""JSON Schemas shipped with the provider (package data; see :mod:`billbee_provider.schema`)."""
