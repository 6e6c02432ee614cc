"""An agency bidding for several clients, who never bid against each other.

The population's agents are the clients, in agencies of ``clients_per_agency``
consecutive agents. Each client bids ``multiplier x value`` (truthful by default, the
dominant strategy of a second-price auction on its own), but in every auction the agency
submits only the highest bid of its clients who were drawn: the others stay out
(Mansour, Muthukrishnan & Nisan 2021, "Ad exchange: intention-driven auctions"; and the
"bid coordination" of agencies in Decarolis, Goldmanis & Penta 2020). The kernel does
this per auction (``group``): a client who would have lost to its own agency's bid
anyway drops out, and a winning client pays the best bid from outside its agency.

In a second-price auction without budgets this helps every client in every auction it
takes part in (it wins exactly when it would have won, and pays no more), so each
client's utility is at least its independent-bidding utility, the same auctions replayed
(``bidscape.analysis.agency.compare_independent``).

With budgets, fixed multipliers waste the saving: a client bids its value until its
budget runs out, coordinated or not. ``pacing = "dual"`` paces the clients jointly, as in
coordinated dynamic bidding with budgets (Chen et al. 2023, arXiv:2306.07709): each
client keeps the dual multiplier ``mu`` of its own budget constraint, updated from its
own spend exactly as ``adaptive_pacing`` does, bids ``multiplier x value / (1 + mu)``,
and the agency bids only for the client with the highest paced bid, the others
abstaining. Every client's ``mu`` then prices its budget at the prices the agency
actually pays, which are lower than when its clients compete. With ``coordinate =
false`` the same clients are independent ``adaptive_pacing`` bidders (the benchmark).
What this promises, and what is measured, is in docs/learners.md.

    [[populations]]
    strategy = "agency"
    budget = { dist = "uniform", low = 5.0, high = 15.0 }
    params = { clients_per_agency = 4, pacing = "dual", step = 0.1 }

``bidscape.analysis.agency.compare_independent(scenario, "clients")`` runs the scenario twice, with and without
coordination (same seed, so the same auctions and values), and returns each client's
utility both ways.
"""

from __future__ import annotations

from typing import Literal, Optional

import numpy as np
from pydantic import Field

from bidscape import limits
from bidscape.bidders.adaptive_pacing import AdaptivePacing, AdaptivePacingParams
from bidscape.bidders.base import Modifier, PopulationView, RoundFeedback, Strategy
from bidscape.errors import Problem


class AgencyParams(AdaptivePacingParams):
    """The agency's own fields; ``step``, ``initial_mu``, ``mu_max`` and ``replan`` (inherited
    from adaptive pacing) apply with ``pacing = "dual"``."""

    clients_per_agency: int = Field(2, ge=1, description="clients per agency (consecutive agents)")
    multiplier: limits.Multiplier = Field(1.0, ge=0, allow_inf_nan=False,
                                          description="each client bids multiplier x value (/ (1 + mu) when paced)")
    coordinate: bool = Field(True, description="false: clients bid independently (the benchmark)")
    pacing: Literal["none", "dual"] = Field("none", description='"dual": each client paces its budget with a dual '
                                            "multiplier (as adaptive_pacing); needs a budget")


def pacing_params(params: AgencyParams) -> AdaptivePacingParams:
    return AdaptivePacingParams(**params.model_dump(include=set(AdaptivePacingParams.model_fields)))


class Agency(Strategy):
    name = "agency"
    summary = ("agencies of clients_per_agency clients; only each agency's best client bids in an auction "
               '(pacing = "dual": clients paced jointly)')
    Params = AgencyParams
    modifiers = frozenset({Modifier.GROUPS})

    def __init__(self, params: AgencyParams, agents: PopulationView, rng: np.random.Generator):
        super().__init__(params, agents, rng)
        self.pacer: Optional[AdaptivePacing] = None
        self.set_params(params)

    def set_params(self, params: AgencyParams) -> None:
        super().set_params(params)
        clients = np.arange(self.agents.size)
        # groups are global agent indices of each agency's first client: unique across populations
        groups = self.agents.first_agent + clients - clients % params.clients_per_agency
        self.agents.group[:] = groups if params.coordinate else -1
        if params.pacing == "none":
            self.pacer = None
        elif self.pacer is None:
            self.pacer = AdaptivePacing(pacing_params(params), self.agents, self.rng)
        else:  # an event: new step or bounds, the learned mu kept
            self.pacer.set_params(pacing_params(params))

    @classmethod
    def scenario_problems(cls, scenario, index: int, where: str) -> list[Problem]:
        from bidscape.mechanisms import MECHANISMS

        population = scenario.populations[index]
        if population.params.get("pacing") == "dual" and population.budget is None:
            return [Problem(f"{where}.budget", 'an agency with pacing = "dual" paces each client\'s budget, '
                            "but the population has none",
                            'add e.g. budget = { dist = "uniform", low = 50.0, high = 150.0 }, or pacing = "none"')]
        for channel in scenario.resolved_channels():
            if index not in channel.populations:
                continue
            if channel.bidders_per_auction == "all":
                return [Problem(f"{where}.strategy", "an agency coordinates the clients drawn into an auction, "
                                f"but channel '{channel.name}' has every agent bid in every auction",
                                "set bidders_per_auction to a number")]
            known = channel.mechanism.type in MECHANISMS
            if known and not MECHANISMS.get(channel.mechanism.type).capabilities.groups:
                return [Problem(f"{where}.strategy", f"agencies coordinate single-item auctions; channel "
                                f"'{channel.name}' runs '{channel.mechanism.type}'",
                                "use first_price, second_price, third_price or all_pay")]
        return []

    def decide(self, round_index: int) -> None:
        if self.pacer is None:
            self.agents.multiplier[:] = self.params.multiplier
            return
        self.pacer.decide(round_index)  # writes 1 / (1 + mu)
        np.multiply(self.agents.multiplier, self.params.multiplier, out=self.agents.multiplier)

    def observe(self, feedback: RoundFeedback) -> None:
        if self.pacer is not None:
            self.pacer.observe(feedback)

