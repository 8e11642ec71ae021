"""Device-platform dialects: the rules a listener applies to its clients."""

from __future__ import annotations

from roost.dialects.alibaba import AlibabaDialect
from roost.dialects.base import Dialect
from roost.dialects.cumulocity_connect import CumulocityConnectDialect
from roost.dialects.cumulocity_smartrest import CumulocitySmartRestDialect
from roost.dialects.generic import GenericDialect
from roost.dialects.watson import WatsonDialect

# The dialects a listener may name; the others of the seed documents are still to come.
DIALECT_NAMES = ("generic", "cumulocity-connect", "cumulocity-smartrest", "watson", "alibaba")


def make_dialect(name: str, tenant: str, allow_anonymous: bool = True) -> Dialect:
    """The dialect called `name` for a listener whose default tenant is `tenant`."""
    if name == "generic":
        return GenericDialect(tenant, allow_anonymous)
    if name == "cumulocity-connect":
        return CumulocityConnectDialect()
    if name == "cumulocity-smartrest":
        return CumulocitySmartRestDialect()
    if name == "watson":
        return WatsonDialect()
    if name == "alibaba":
        return AlibabaDialect()
    raise ValueError(f"unknown dialect {name!r}; known: {', '.join(DIALECT_NAMES)}")


__all__ = ["DIALECT_NAMES", "Dialect", "make_dialect"]
