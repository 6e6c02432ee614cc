"""Per-auction bid modifiers: everything that changes one bidder's bid in one auction beyond its hot row.

The kernels bid ``min(multiplier * value_scale * v, remaining_budget)`` from the 32-byte row
``bid_state[agent]`` (``bidscape.engine.kernel``). Whatever else can change that bid, auction by
auction, travels in one optional structure, ``BidModifiers``, with a field per modifier:

- ``segments``: ``(segment_of, lo, multiplier)``, per-segment bid multipliers on the value
  (``bidscape.engine.context.bid_value``), for strategies that bid per segment;
- ``cap``: ``float64[A]``, what each agent may still spend on this channel;
- ``personal``: ``float64[A]``, personal reserves: a bid below its bidder's reserve does not take
  part, and a winner pays at least it;
- ``participation``: ``float64[A]``, throttling: the agent takes part in each auction it is drawn
  for with this probability (a hashed draw, ``STREAM_THROTTLE``);
- ``group``: ``int64[A]``, coordination groups (-1 = none): of a group's bids in an auction only
  the highest counts (the earliest participant slot among ties).

They apply in that order: the segment multiplier scales the value, the cap bounds the bid like
the budget does, then the personal reserve and the throttle draw set it to 0, and groups act
once every bid of the auction is known.

A field is ``None`` when the scenario does not use that modifier. The kernels reach each field
through the small functions below, which numba compiles once per field type: a ``None`` field
becomes a function that returns its input, which LLVM inlines away. The segment lookup, whose
field is a tuple of arrays, is instead chosen by type at compile time and inlined by numba
(``value_to_bid_on``): as a call per bid it cost rounds with per-segment bidders 1.5x. A scenario pays nothing
for a modifier it does not use, and adding one is a field here plus its step below, not an
argument and a branch in every kernel. (A ``None`` field cannot be tested inside the kernels
themselves: numba prunes ``x is None`` only on a function's own arguments, so every test lives
in a function that takes the field as an argument. LLVM inlines those functions: against the
kernels with one argument per modifier, a round of 1e6 agents measured the same within this
machine's noise, with and without modifiers.)

Strategies ask for a modifier by listing its ``Modifier`` in ``Strategy.modifiers``; the market
state (``bidscape.loop.state``) then allocates its array, and leaves the field ``None`` otherwise.
"""

from __future__ import annotations

import enum
from typing import NamedTuple, Optional

import numpy as np
from numba import njit, types
from numba.extending import overload

from bidscape.engine.context import bid_value
from bidscape.engine.rng import STREAM_THROTTLE, draw_u64, to_unit


class Modifier(str, enum.Enum):
    """The modifiers a strategy can declare (``Strategy.modifiers``); the market allocates their arrays."""

    PARTICIPATION = "participation"  # writes ``agents.participation`` each round (throttling)
    CHANNEL_CAPS = "channel_caps"  # writes ``agents.channel_caps`` (what each agent may spend per channel)
    GROUPS = "groups"  # sets ``agents.group`` in ``__init__`` (coordination groups)


class BidModifiers(NamedTuple):
    """The per-auction bid modifiers of one channel's round (see the module docstring); ``None``: unused."""

    segments: Optional[tuple] = None
    cap: Optional[np.ndarray] = None
    personal: Optional[np.ndarray] = None
    participation: Optional[np.ndarray] = None
    group: Optional[np.ndarray] = None

    def replayed(self) -> "BidModifiers":
        """The fields the counterfactual replay applies (throttling and personal reserves; its
        approximations are in ``bidscape.engine.counterfactual``): the others are dropped, so that
        its kernels are not compiled once more for each of them."""
        return BidModifiers(personal=self.personal, participation=self.participation)


NO_MODIFIERS = BidModifiers()


def value_to_bid_on(mods, auction, agent, v):
    """The base value the agent bids on in ``auction`` (of the round): ``v`` times its segment multiplier.

    Chosen by type when a kernel compiles (``_value_to_bid_on``) and inlined there: the segment
    table is a tuple of arrays, and a call per bid that takes it measured about 1.5x slower on
    rounds with per-segment bidders."""
    return bid_value(mods.segments, auction, agent, v)


@overload(value_to_bid_on, inline="always")
def _value_to_bid_on(mods, auction, agent, v):
    if isinstance(mods[mods.fields.index("segments")], types.NoneType):
        return lambda mods, auction, agent, v: v

    def lookup(mods, auction, agent, v):  # the field is a tuple here, never None
        return bid_value(mods.segments, auction, agent, v)
    return lookup


@njit(cache=True, inline="always")
def modified_bid(mods, agent, bid, key_of_auction):
    """``bid`` after the channel cap, the personal reserve and the throttle draw (0: not taking part)."""
    return _modified(agent, bid, key_of_auction, mods.cap, mods.personal, mods.participation)


@njit(cache=True, inline="always")
def takes_part(mods, key_of_auction, agent):
    """Whether the throttle draw lets the agent take part in this auction (always, without throttling)."""
    return _takes_part(key_of_auction, agent, mods.participation)


@njit(cache=True, inline="always")
def throttled(mods):
    """Whether some agent is throttled (a constant of the compiled kernel)."""
    return _some(mods.participation)


@njit(cache=True, inline="always")
def grouped(mods):
    """Whether coordination groups are on (a constant of the compiled kernel)."""
    return _some(mods.group)


@njit(cache=True, inline="always")
def own_reserve(mods, agent):
    """The agent's personal reserve (0 without personal reserves)."""
    return _own_reserve(agent, mods.personal)


@njit(cache=True, inline="always")
def charge_cap(mods, agent, amount):
    """Take ``amount`` off the agent's channel budget (nothing without channel caps)."""
    _charge_cap(agent, amount, mods.cap)


@njit(cache=True, inline="always")
def coordinate(mods, who, offset, bidders, bids):
    """Within each group, only the highest bid (the earliest slot among ties) stays in the auction."""
    _coordinate(who, offset, bidders, bids, mods.group)


# The functions that take a field as an argument: each is compiled per field type (None or an array).


@njit(cache=True)
def _modified(agent, bid, key_of_auction, cap, personal, participation):
    if cap is not None:
        bid = min(bid, cap[agent])
    if personal is not None:
        bid = bid if bid >= personal[agent] else 0.0
    if participation is not None:
        bid = bid if _takes_part(key_of_auction, agent, participation) else 0.0
    return bid


@njit(cache=True)
def _takes_part(key_of_auction, agent, participation):
    if participation is None:
        return True
    return to_unit(draw_u64(key_of_auction, STREAM_THROTTLE, agent)) < participation[agent]


@njit(cache=True)
def _some(field):
    return field is not None


@njit(cache=True)
def _own_reserve(agent, personal):
    if personal is None:
        return 0.0
    return personal[agent]


@njit(cache=True)
def _charge_cap(agent, amount, cap):
    if cap is not None:
        cap[agent] -= amount


@njit(cache=True)
def _coordinate(who, offset, bidders, bids, group):
    if group is None:
        return
    for j in range(bidders):
        g = group[who[offset + j]]
        if g < 0:
            continue
        for q in range(bidders):
            if q != j and group[who[offset + q]] == g and (bids[q] > bids[j] or (bids[q] == bids[j] and q < j)):
                bids[j] = 0.0
                break
