"""What the Billbee account holds, and one import per account at a time.

Knowing what exists: one paged scan, not a search per row
    Billbee has no filter by e-mail on ``GET /api/v1/customers``, and the hits of
    ``POST /api/v1/search`` carry only ``Id, Name, Addresses, Number``, no e-mail
    (API-FACTS): a search per row could not even confirm a match without one more
    ``GET /customers/{id}`` per hit. :func:`scan_account` reads every customer once at
    ``pageSize=250`` and builds an :class:`AccountIndex` of lower-cased e-mails.

Which e-mails are a customer's
    A row "already exists" when its e-mail is one of a customer's **own** e-mails
    (:func:`customer_emails`): ``Email`` and the ``Value`` of ``DefaultMailAddress``,
    ``DefaultCommercialMailAddress`` and ``DefaultStatusUpdatesMailAddress``. Address
    e-mails (``Address.Email``, ``Addresses[].Email``) and further e-mail ``MetaData``
    are not: a customer whose shipping address mails a warehouse or an agency does not
    make every row with that e-mail the same customer (the SQL sync would then write
    that customer's Id to another shop row). When a row's e-mail is an own e-mail of
    more than one customer, :meth:`AccountIndex.existing` gives them all and the row is
    ``ambiguous``: never linked to one of them at random, never sent.

    Resolving a row this import sent without an answer (in doubt) is a different
    question: which customer did *our* request create? :meth:`AccountIndex.find` takes
    the lowest Id with the e-mail that no other row has claimed (and that did not exist
    before this run sent it, see :mod:`~billbee_provider.imports.send`): several
    customers with one e-mail there come from our own sends (a retried create, a
    re-run), and any of them is the row's. It looks in the own e-mails for a row whose
    key is its body's ``Email``; a row keyed by ``Address.Email`` (no ``Email``) becomes
    a customer whose address carries the key, so for it address e-mails and e-mail
    ``MetaData`` (:func:`contact_emails`) count too.

One import per account at a time
    Two imports of one account that overlap would both scan before either creates, and
    both create every new row. :func:`account_lock` holds an exclusive ``flock`` on the
    file :func:`account_lock_path` names (a hash of the normalised account, no data in clear)
    from before the scan until the last create; the kernel drops it when its holder dies.

This module does not import Airflow.
"""

from __future__ import annotations

import bisect
import fcntl
import logging
import os
import tempfile
import time
from collections.abc import Container, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from billbee_provider.api.client import MAX_PAGE_SIZE, BillbeeClient, Logger
from billbee_provider.api.config import account_id
from billbee_provider.api.envelope import json_int

_log = logging.getLogger(__name__)


@dataclass
class AccountIndex:
    """Customer Ids of the account by lower-cased e-mail, from one paged scan.

    :param ids_by_email: own e-mail (:func:`customer_emails`) -> Ids of the customers
        having it, ascending.
    :param ids_by_contact: any e-mail of a customer (:func:`contact_emails`) -> Ids, ascending.
    :param customers: number of customers scanned.
    """

    ids_by_email: dict[str, list[int]] = field(default_factory=dict)
    ids_by_contact: dict[str, list[int]] = field(default_factory=dict)
    customers: int = 0

    def existing(self, key: str) -> list[int]:
        """Ids of the customers whose own e-mail is ``key``, ascending (more than one: ambiguous)."""
        return list(self.ids_by_email.get(key, ()))

    def find(self, key: str, exclude: Container[int] = (), *, own: bool = True) -> int | None:
        """The lowest Id of a customer with e-mail ``key`` that is not in ``exclude``.

        :param own: look in own e-mails only (a row keyed by its ``Email``); ``False``:
            in every e-mail of a customer (a row keyed by ``Address.Email``).
        """
        ids = self.ids_by_email if own else self.ids_by_contact
        return next((i for i in ids.get(key, ()) if i not in exclude), None)

    def ids(self) -> set[int]:
        """Every Id indexed (customers with at least one e-mail)."""
        return {i for ids in self.ids_by_contact.values() for i in ids}

    def add(self, customer: Mapping[str, Any]) -> None:
        """Index one customer as ``GET /api/v1/customers`` answers it."""
        self.customers += 1
        customer_id = json_int(customer.get("Id"))
        if customer_id is None:
            return
        for index, emails in (
            (self.ids_by_email, customer_emails(customer)),
            (self.ids_by_contact, contact_emails(customer)),
        ):
            for email in emails:
                _insert_sorted(index.setdefault(email, []), customer_id)


def _insert_sorted(ids: list[int], customer_id: int) -> None:
    """Add ``customer_id`` to the ascending ``ids`` once, in O(log n).

    The scan pages in Id order, so the new Id usually goes at the end; a membership test
    and a sort per customer cost O(n^2) for an e-mail many customers share (226 s for
    100,000 customers with one shop e-mail).
    """
    if not ids or customer_id > ids[-1]:
        ids.append(customer_id)
        return
    at = bisect.bisect_left(ids, customer_id)
    if at == len(ids) or ids[at] != customer_id:
        ids.insert(at, customer_id)


def customer_emails(customer: Mapping[str, Any]) -> set[str]:
    """A customer's own e-mails, lower-cased: ``Email`` and the ``Default*MailAddress`` values.

    What "a row already exists" is matched on (see the module docstring).
    """
    values: list[Any] = [customer.get("Email")]
    for name in ("DefaultMailAddress", "DefaultCommercialMailAddress", "DefaultStatusUpdatesMailAddress"):
        contact = customer.get(name)
        if isinstance(contact, Mapping):
            values.append(contact.get("Value"))
    return _emails(values)


def contact_emails(customer: Mapping[str, Any]) -> set[str]:
    """Every e-mail of a customer, lower-cased: own e-mails, e-mail ``MetaData``, address e-mails.

    Only for resolving a row sent without an answer whose key is an address e-mail.
    """
    values: list[Any] = []
    for item in _mappings(customer.get("MetaData")):
        if item.get("TypeId") == 1:  # 1 = e-mail (PHP SDK CustomerMetaData.php)
            values.append(item.get("Value"))
    for address in [customer.get("Address"), *_mappings(customer.get("Addresses"))]:
        if isinstance(address, Mapping):
            values.append(address.get("Email"))
    return customer_emails(customer) | _emails(values)


def _emails(values: list[Any]) -> set[str]:
    return {v.strip().lower() for v in values if isinstance(v, str) and v.strip()}


def _mappings(value: Any) -> list[Mapping[str, Any]]:
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []


def scan_account(client: BillbeeClient, log: Logger = _log) -> AccountIndex:
    """Read every customer of the account once, at the largest page size."""
    started = time.monotonic()
    index = AccountIndex()
    for customer in client.iter_customers(page_size=MAX_PAGE_SIZE):
        index.add(customer)
    pages = max(1, -(-index.customers // MAX_PAGE_SIZE))
    log.info(
        "account scan: %d customer(s), %d e-mail(s), %d page(s) in %.1f s",
        index.customers,
        len(index.ids_by_email),
        pages,
        time.monotonic() - started,
    )
    return index


def account_lock_path(base_url: str, user: str, lock_dir: str | os.PathLike[str] | None = None) -> Path:
    """The lock file of one Billbee account, named by its :func:`~billbee_provider.api.config.account_id`.

    The name is a hash of the *normalised* account (scheme and host lower-cased, default
    port, trailing dot, ``/`` and ``/api/v1`` dropped, every loopback spelling one host,
    ``api.``/``app.billbee.io`` one host, the user case-folded), so that two connections
    spelling one account's Host differently take the same lock. No data in clear.
    """
    return (
        Path(lock_dir if lock_dir is not None else tempfile.gettempdir())
        / f"billbee-import-{account_id(base_url, user)}.lock"
    )


@contextmanager
def account_lock(path: Path, log: Logger = _log) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path``; wait (and say so) while another import holds it.

    The kernel releases the lock when the holder's file is closed, also when its process
    is killed, so a crashed import never leaves the account locked.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("another import of this Billbee account runs on this machine; waiting for it to end")
            waited = time.monotonic()
            fcntl.flock(fd, fcntl.LOCK_EX)
            log.info("account lock acquired after %.1f s", time.monotonic() - waited)
        yield
    finally:
        os.close(fd)  # releases the lock
