"""Auction mechanisms, registered by the names scenario files use (``mechanism.type``)."""

from bidscape.mechanisms import first_price, second_price
from bidscape.mechanisms.base import SingleItemAuction
from bidscape.registry import Registry

MECHANISMS: Registry[SingleItemAuction] = Registry("mechanism", "mechanisms")
for _module in (first_price, second_price):
    MECHANISMS.register(_module.MECHANISM.name, _module.MECHANISM)

__all__ = ["MECHANISMS", "SingleItemAuction"]
