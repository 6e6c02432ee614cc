"""Auction mechanisms, registered by the names scenario files use (``mechanism.type``).

A new mechanism is one module defining ``MECHANISM`` plus one line in ``_MODULES``;
``bidscape.check_mechanism`` tells whether it keeps the shared invariants.
"""

from bidscape.mechanisms import all_pay, first_price, gsp, second_price, third_price, vcg
from bidscape.mechanisms.base import (Capabilities, KernelMarket, Mechanism, MechanismSettings, Outcomes,
                                      PositionAuction, SingleItemAuction, Totals)
from bidscape.registry import Registry

_MODULES = (first_price, second_price, third_price, all_pay, gsp, vcg)

MECHANISMS: Registry[Mechanism] = Registry("mechanism", "mechanisms")
for _module in _MODULES:
    MECHANISMS.register(_module.MECHANISM.name, _module.MECHANISM)

__all__ = ["MECHANISMS", "Capabilities", "KernelMarket", "Mechanism", "MechanismSettings", "Outcomes", "PositionAuction",
           "SingleItemAuction", "Totals"]
