"""Plain-Python twin of ``bidscape.engine.capped``: the efficient assignment of position
slots when click probabilities ``min(1, q * ctr)`` are capped, and VCG's prices for it.

Written for reading, with dictionaries, sets and ``sorted``; it must give exactly the
kernel's numbers, so it adds the same floating-point terms in the same order (candidates
worst score first, subsets of slots downwards, slots upwards, strict improvements); it
solves each lowered bid afresh where the kernel restarts from a kept state.
``tests/test_position_theory.py`` holds both to a brute force over all assignments.
"""

from __future__ import annotations

import math
from typing import Hashable, Mapping, Sequence


def _value(amount: float, quality: float, ctr: float) -> float:
    """Expected value per impression: amount x click probability."""
    return amount * min(1.0, quality * ctr)


def candidates(ctrs: Sequence[float], amount: Mapping, quality: Mapping, order: Mapping, keep: int) -> list:
    """Participants among the ``keep`` best of some slot (by value, then ``order``), worst ``order`` first.

    Some efficient assignment uses only these (any other participant in slot ``s`` has
    ``keep - 1`` better ones there, one of them idle: swap them).
    """
    chosen: set = set()
    for ctr in ctrs:
        ranked = sorted(amount, key=lambda j: (_value(amount[j], quality[j], ctr), order[j]), reverse=True)
        chosen.update(ranked[:keep])
    return sorted(chosen, key=lambda j: order[j])


def best_assignment(values: list[list[float]], slots: int) -> tuple[float, list[int]]:
    """The best total over assignments of candidates (rows, in order) to distinct slots.

    ``best[mask]`` is the best total filling exactly the slots in ``mask``; each candidate
    in turn may improve it. Returns the best total (ties: more slots filled, then the
    smaller mask, i.e. the top slots) and the slot of each candidate (-1: none).
    """
    full = 1 << slots
    best = [0.0] + [-math.inf] * (full - 1)
    took = []
    for row in values:
        step = [-1] * full
        for mask in range(full - 1, 0, -1):
            for s in range(slots):
                if mask >> s & 1:
                    total = best[mask ^ (1 << s)] + row[s]
                    if total > best[mask]:
                        best[mask], step[mask] = total, s
        took.append(step)
    mask = max(range(full), key=lambda m: (best[m], bin(m).count("1"), -m))
    top = best[mask]
    slot_of = [-1] * len(values)
    for k in range(len(values) - 1, -1, -1):
        slot_of[k] = took[k][mask]
        if slot_of[k] >= 0:
            mask ^= 1 << slot_of[k]
    return top, slot_of


def capped_welfare(ctrs: Sequence[float], worth: Sequence[float], quality: Sequence[float]) -> float:
    """The efficient welfare of giving the slots to participants worth ``worth`` (value_scale x v)."""
    everyone = range(len(worth))
    order = {j: (0.0, -j) for j in everyone}  # ties: the lower participant index first
    cand = candidates(ctrs, dict(zip(everyone, worth)), dict(zip(everyone, quality)), order, len(ctrs))
    return best_assignment([[_value(worth[j], quality[j], c) for c in ctrs] for j in cand], len(ctrs))[0]


def capped_vcg(ctrs: Sequence[float], bids: Sequence[float], quality: Mapping[Hashable, float],
               score: Mapping, tie: Mapping, floors: Mapping) -> tuple[list, Hashable | None, list[float]]:
    """VCG among the bidders taking part (the keys of ``quality``).

    Returns the slots' occupants top down, the best bidder left out (by score, then tie)
    or None, and each occupant's price per click: the welfare the others would have with
    its bid lowered to its floor, less what they get now, per expected click, kept within
    [floor, bid] against rounding.
    """
    slots = len(ctrs)
    order = {j: (score[j], tie[j]) for j in quality}
    cand = candidates(ctrs, {j: bids[j] for j in quality}, quality, order, slots + 1)
    values = [[_value(bids[j], quality[j], c) for c in ctrs] for j in cand]
    _, slot_of = best_assignment(values, slots)
    occupant = {slot_of[k]: cand[k] for k in range(len(cand)) if slot_of[k] >= 0}
    assert sorted(occupant) == list(range(len(occupant))), "the filled slots are the top ones"
    prices = []
    for s in range(len(occupant)):
        k = cand.index(occupant[s])
        j = cand[k]
        others = 0.0  # the other winners' values, in the order the programme adds them
        for i in range(len(cand)):
            if i != k and slot_of[i] >= 0:
                others += values[i][slot_of[i]]
        lowered = [row if i != k else [_value(floors[j], quality[j], c) for c in ctrs] for i, row in enumerate(values)]
        without, _ = best_assignment(lowered, slots)
        per_click = (without - others) / min(1.0, quality[j] * ctrs[s])
        prices.append(min(max(per_click, floors[j]), bids[j]))
    left_out = [j for j in quality if j not in occupant.values()]
    runner_up = max(left_out, key=lambda j: order[j]) if left_out else None
    return [occupant[s] for s in range(len(occupant))], runner_up, prices
