"""The Billbee endpoints the client knows, and how any request path maps to one.

An :class:`Endpoint` is what the throttle counts (method + path template, Billbee limits
each endpoint separately) and what the retry rules look at (may it be sent twice?).
:func:`endpoint_for` gives the endpoint of a concrete request, so that a request built
from a path (``BillbeeHook.run``) is paced and retried exactly like the typed call of
the same endpoint.

This module does not import Airflow.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: Methods that are safe to send twice. PUT and PATCH set fields and DELETE removes:
#: repeating them leaves the same state. POST creates, unless listed in ``_IDEMPOTENT_POSTS``.
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "PATCH", "DELETE"})
#: A path segment that is an Id, replaced by ``{id}`` in the template.
_ID_SEGMENT = re.compile(r"[+-]?[0-9]+")


@dataclass(frozen=True)
class Endpoint:
    """One Billbee endpoint, as the throttle counts it.

    :param method: HTTP method.
    :param template: path template, e.g. ``/api/v1/customers/{id}``.
    :param idempotent: whether sending it twice is harmless (reads, PUT, PATCH, search).
    """

    method: str
    template: str
    idempotent: bool

    @property
    def key(self) -> str:
        """The throttle key, e.g. ``POST /api/v1/customers``."""
        return f"{self.method} {self.template}"


LIST_CUSTOMERS = Endpoint("GET", "/api/v1/customers", idempotent=True)
CREATE_CUSTOMER = Endpoint("POST", "/api/v1/customers", idempotent=False)
GET_CUSTOMER = Endpoint("GET", "/api/v1/customers/{id}", idempotent=True)
ADD_CUSTOMER_ADDRESS = Endpoint("POST", "/api/v1/customers/{id}/addresses", idempotent=False)
SEARCH = Endpoint("POST", "/api/v1/search", idempotent=True)

_KNOWN = {e.key: e for e in (LIST_CUSTOMERS, CREATE_CUSTOMER, GET_CUSTOMER, ADD_CUSTOMER_ADDRESS, SEARCH)}


def path_template(path: str) -> str:
    """The template of a concrete path: every all-digit segment becomes ``{id}``.

    :param path: a request path without query, e.g. ``/api/v1/customers/42/addresses``.
    :return: e.g. ``/api/v1/customers/{id}/addresses``.
    """
    return "/".join("{id}" if _ID_SEGMENT.fullmatch(part) else part for part in path.split("/"))


def endpoint_for(method: str, path: str) -> Endpoint:
    """The endpoint a request of ``method`` to ``path`` belongs to.

    A known endpoint is returned as the typed methods use it (same throttle key, same
    idempotency); any other path is idempotent if its method is
    (:data:`IDEMPOTENT_METHODS`), so an unknown POST is treated as a create.

    :param method: HTTP method, any case.
    :param path: the request path without query, e.g. ``/api/v1/customers/42``.
    """
    method = method.upper()
    template = path_template(path)
    known = _KNOWN.get(f"{method} {template}")
    return known or Endpoint(method, template, idempotent=method in IDEMPOTENT_METHODS)
