"""The Billbee API models the sandbox reads and writes, as field lists.

Names, types and .NET type names follow ``billbee-customers-api.swagger.yaml``; the
field order follows the PHP SDK fixtures (real answers), which is also the order the
sandbox answers in. :func:`present` drops ``null`` fields because real answers do
(the fixtures' successful answers have no ``ErrorMessage`` at all).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class Kind(Enum):
    """JSON/.NET value kinds the binder distinguishes."""

    INT32 = "System.Int32"
    INT64 = "System.Int64"
    STRING = "System.String"
    DATETIME = "System.DateTime"
    OBJECT = "object"
    LIST = "list"


@dataclass(frozen=True)
class Field:
    """One property of a model.

    :param name: the property name as Billbee spells it.
    :param kind: its value kind.
    :param item: for ``OBJECT`` the nested :class:`Model`; for ``LIST`` the element's
        :class:`Model` or :class:`Kind`.
    """

    name: str
    kind: Kind
    item: Model | Kind | None = None


@dataclass(frozen=True)
class Model:
    """A Billbee request/answer model: its .NET type name and its fields."""

    clr_name: str
    fields: tuple[Field, ...]
    _by_key: dict[str, Field] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_key", {f.name.casefold(): f for f in self.fields})

    def lookup(self, key: str) -> Field | None:
        """The field a JSON key binds to, ignoring case (as ASP.NET does); ``None`` if unknown."""
        return self._by_key.get(key.casefold())

    @property
    def names(self) -> tuple[str, ...]:
        """Field names in answer order."""
        return tuple(f.name for f in self.fields)


def _strings(*names: str) -> tuple[Field, ...]:
    return tuple(Field(n, Kind.STRING) for n in names)


_NS = "Billbee.Interfaces.BillbeeAPI"

META_DATA = Model(
    f"{_NS}.Models.CustomerMetaDataApiModel",
    (
        Field("Id", Kind.INT64),
        Field("TypeId", Kind.INT64),
        *_strings("TypeName", "SubType", "Value"),
    ),
)

ADDRESS = Model(
    f"{_NS}.Model.CustomerAddressApiModel",
    (
        Field("Id", Kind.INT64),
        Field("AddressType", Kind.INT32),
        Field("CustomerId", Kind.INT64),
        *_strings("Company", "FirstName", "LastName", "Name2", "Street", "Housenumber", "Zip", "City"),
        *_strings("State", "CountryCode", "Email", "Tel1", "Tel2", "Fax", "AddressAddition"),
        Field("ArchivedAt", Kind.DATETIME),
        Field("RestoredAt", Kind.DATETIME),
    ),
)

#: Fields of ``CustomerMetaDataApiModel`` type on a customer, in answer order.
DEFAULT_CONTACTS = (
    "DefaultMailAddress",
    "DefaultCommercialMailAddress",
    "DefaultStatusUpdatesMailAddress",
    "DefaultPhone1",
    "DefaultPhone2",
    "DefaultFax",
)

_CUSTOMER_FIELDS = (
    Field("Id", Kind.INT64),
    *_strings("Name", "Email", "Tel1", "Tel2"),
    Field("Number", Kind.INT32),
    Field("PriceGroupId", Kind.INT64),
    Field("LanguageId", Kind.INT32),
    Field("VatId", Kind.STRING),
    Field("Type", Kind.INT32),
    *(Field(name, Kind.OBJECT, META_DATA) for name in DEFAULT_CONTACTS),
    Field("MetaData", Kind.LIST, META_DATA),
    Field("ArchivedAt", Kind.DATETIME),
    Field("RestoredAt", Kind.DATETIME),
)

CUSTOMER = Model(f"{_NS}.Model.CustomerApiModel", _CUSTOMER_FIELDS)

CREATE_CUSTOMER = Model(
    f"{_NS}.Model.CreateCustomerApiModel",
    (Field("Address", Kind.OBJECT, ADDRESS), *_CUSTOMER_FIELDS),
)

SEARCH = Model(
    "Rechnungsdruck.WebApp.Controllers.Api.SearchController.SearchModel",
    (Field("Type", Kind.LIST, Kind.STRING), Field("Term", Kind.STRING), Field("SearchMode", Kind.INT32)),
)


def blank(model: Model) -> dict[str, Any]:
    """A record of ``model`` with every field ``None``."""
    return dict.fromkeys(model.names)


def present(model: Model, record: dict[str, Any]) -> dict[str, Any]:
    """``record`` as Billbee answers it: fields in model order, ``null`` ones left out."""
    answer: dict[str, Any] = {}
    for spec in model.fields:
        value = record.get(spec.name)
        if value is None:
            continue
        if isinstance(spec.item, Model) and spec.kind is Kind.OBJECT:
            value = present(spec.item, value)
        elif isinstance(spec.item, Model):
            value = [present(spec.item, v) for v in value]
        answer[spec.name] = value
    return answer
