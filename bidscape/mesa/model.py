"""``MarketModel``: a bidscape market driven as a Mesa model, one ``step()`` per round.

The market itself stays a ``bidscape.loop.simulation.Simulation``: flat arrays and jitted
kernels, no Python object per bidder. Mesa sees the round's totals (model reporters) and
one ``CohortAgent`` per population or archetype (agent reporters, ``model.agents``).

    model = MarketModel("data/scenarios/reserve_price.toml", **{"run.auctions_per_round": 10_000})
    model.intervene(5, {"mechanism.reserve": 0.5})       # before round 5 is played
    model.run_model()                                    # until the scenario's last round
    model.datacollector.get_model_vars_dataframe()       # one row per round
"""

from __future__ import annotations

import copy
import fnmatch
import heapq
import itertools
import os
from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import Any, Callable, Optional

import mesa
import numpy as np

from bidscape import __version__
from bidscape.outputs.columns import extra_tables
from bidscape.outputs.recorder import Recorder
from bidscape.outputs.summary import RunTotals
from bidscape.loop.simulation import RoundResult, Simulation
from bidscape.errors import InputError, Problem
from bidscape.games import game_of
from bidscape.mesa.cohorts import Cohorts, utilisation
from bidscape.scenario import SETTABLE_DURING_RUN, Scenario, read_toml, set_path

AGENT_REPORTERS = ("cohort", "population", "agents", "mean_multiplier", "spend", "wins", "value",
                   "budget_remaining", "mean_regret")


def load_scenario(scenario: Any, updates: Optional[Mapping[str, Any]] = None) -> Scenario:
    """A ``Scenario`` from a Scenario, a TOML path or a dict, with ``{"dotted.key": value}`` applied.

    The updates are applied to the raw tables and validated once, like ``bidscape run --set``;
    a bad key or value raises ``InputError`` naming it.
    """
    if isinstance(scenario, Scenario):
        raw, source = scenario.to_dict(), "scenario"
    elif isinstance(scenario, Mapping):
        raw, source = copy.deepcopy(dict(scenario)), "scenario"
    elif isinstance(scenario, (str, os.PathLike)):
        raw, source = read_toml(scenario)
    else:
        raise InputError(Problem("scenario", f"expected a Scenario, a path to a TOML file or a dict "
                                 f"(got {type(scenario).__name__})",
                                 'pass e.g. scenario="data/scenarios/reserve_price.toml"'))
    game = game_of(raw)
    if game is not None:
        raise InputError(Problem(game.table, f"a {game.label} ({game.title}) cannot run as a MarketModel",
                                 f"use an auction scenario, or `bidscape run` for {game.label}s"), source)
    for path, value in (updates or {}).items():
        set_path(raw, str(path), value)
    return Scenario.from_dict(raw, source)


class _Agenda:
    """Interventions waiting for their round.

    Uses Mesa's discrete-event list (``mesa.experimental.devs.DEVSimulator``: events at
    absolute times, ordered by time then scheduling order) as a private agenda whose clock
    is the round: the model advances it to round r at the start of ``step()``, before
    round r is played. The model is still stepped directly, so ``batch_run``,
    ``run_model`` and an outer ``ABMSimulator`` drive it as any Mesa model. Without the
    experimental module (it may move between Mesa versions) a heap does the same.
    """

    def __init__(self, model: mesa.Model):
        try:
            from mesa.experimental.devs import DEVSimulator
        except ImportError:
            self.devs = None
        else:
            self.devs = DEVSimulator()
            self.devs.setup(model)
        self._heap: list[tuple[int, int, Callable, tuple]] = []
        self._order = itertools.count()

    def schedule(self, at_round: int, function: Callable, *args: Any) -> None:
        if self.devs is not None:
            self.devs.schedule_event_absolute(function, float(at_round), function_args=list(args))
        else:
            heapq.heappush(self._heap, (at_round, next(self._order), function, args))

    def run_until(self, round_index: int) -> None:
        """Fire everything scheduled for rounds up to ``round_index``, in order."""
        if self.devs is not None:
            self.devs.run_until(float(round_index))
            return
        while self._heap and self._heap[0][0] <= round_index:
            _, _, function, args = heapq.heappop(self._heap)
            function(*args)


class MarketModel(mesa.Model):
    """A bidscape market as a Mesa model: one ``step()`` plays one round.

    Args:
        scenario: a ``bidscape.Scenario``, a path to a scenario TOML file, or a dict of its tables.
        seed: the market's seed (``run.seed``); None keeps the scenario's. Also seeds Mesa's
            ``model.random`` / ``model.rng``. ``rng`` is accepted as an integer alias.
        record_to: a folder to stream the run into, exactly as ``bidscape.run(..., out=...)``
            writes it (market.arrow, agents.arrow, auctions.arrow, manifest.json).
        overwrite: replace an existing run folder at ``record_to``.
        cohorts_by: how market agents are grouped into ``CohortAgent``s (see
            ``bidscape.mesa.cohorts``): None, "population", a tuple of attributes or a dict of bins.
        overrides: ``{"dotted.key": value}`` scenario changes, as ``bidscape run --set``.
        **dotted: more overrides as keyword arguments (``**{"mechanism.reserve": 0.3}``), the
            way ``mesa.batch_run`` passes its parameters.

    The run ends (``running = False``) after the scenario's last round. Model rows of the
    DataCollector, and agent rows (their "Step"), are indexed by the round (0-based).
    """

    def __init__(self, scenario: Any, *, seed: Optional[int] = None, rng: Optional[int] = None,
                 record_to: Optional[str | Path] = None, overwrite: bool = False, cohorts_by: Any = None,
                 overrides: Optional[Mapping[str, Any]] = None, **dotted: Any):
        if seed is not None and rng is not None:
            raise ValueError("pass either seed or rng, not both")
        seed = rng if seed is None else seed
        updates = {**(overrides or {}), **dotted}
        if seed is not None:
            if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
                raise InputError(Problem("seed", f"{seed!r} is not an integer seed", "pass an integer >= 0"))
            updates["run.seed"] = int(seed)
        self.scenario = load_scenario(scenario, updates)
        super().__init__(seed=self.scenario.run.seed)
        names = [p.name for p in self.scenario.populations]
        channels = tuple(c.name for c in self.scenario.resolved_channels())
        self.recorder: Optional[Recorder] = None
        if record_to is not None:
            self.recorder = Recorder(Path(record_to), self.scenario.to_dict(), names, __version__, overwrite,
                                     channels, extra_tables(self.scenario))
        self.simulation: Optional[Simulation] = None
        try:
            self.simulation = Simulation(self.scenario)
            if self.recorder is not None:
                self.simulation.attach(self.recorder)
            self.totals = RunTotals(self.simulation)
            self.cohorts = Cohorts(self, self.simulation, cohorts_by)
        except BaseException as error:
            self._abort(error)
            raise
        self.result: Optional[RoundResult] = None  # the last round played
        self.applied: list[tuple[int, dict[str, Any], str]] = []  # (before round, updates, source)
        self._agenda = _Agenda(self)
        self.report: dict[str, Any] = {}
        population_keys = [f"{what}[{name}]" for name in names
                           for what in ("spend", "wins", "mean_multiplier", "budget_utilisation")]
        channel_keys = [f"{what}[{name}]" for name in channels for what in ("revenue", "sold", "reserve")] \
            if len(channels) > 1 else []
        keys = ["round", "seed", "auctions", "sold", "revenue", "welfare", "sold_share", "mean_price", "reserve",
                *channel_keys, *population_keys]
        self.datacollector = mesa.DataCollector(
            model_reporters={key: partial(_reported, key) for key in keys},
            agent_reporters={name: name for name in AGENT_REPORTERS},
        )

    # ---- running ----
    def step(self) -> None:
        """Play one round: due interventions, the round, cohort aggregates, one DataCollector row."""
        simulation = self.simulation
        if simulation.finished:
            self.running = False
            self.steps -= 1  # Mesa counted this call; keep model.steps == rounds played
            return
        try:
            self._agenda.run_until(simulation.round)
            result = simulation.step(self.recorder)
            if self.recorder is not None:
                self.recorder.end_round(simulation.round)
            self.totals.add(result)
            self.result = result
            self.report = self._report(result)
            played, self.steps = self.steps, result.round  # agent rows keyed by round, like model rows
            try:
                self.datacollector.collect(self)
            finally:
                self.steps = played
            if simulation.finished:
                self.running = False
                self._complete()
        except BaseException as error:
            self._abort(error)
            raise

    def _complete(self) -> None:
        self.simulation.close()
        if self.recorder is not None:
            self.recorder.complete(self.totals.summary())
        self._release()

    def _release(self) -> None:
        """Let the model be garbage-collected once dropped, arrays and all.

        Mesa 3.3's ``Agent._ids`` (a class-level dict of per-model id counters) holds every
        model that ever created an agent, so without this each finished run of a batch would
        keep its market in memory (mesa issue #3179). Agents added after the run has ended
        would restart their ids at 1.
        """
        ids = getattr(mesa.Agent, "_ids", None)
        if isinstance(ids, dict):
            ids.pop(self, None)

    def _abort(self, error: BaseException) -> None:
        """Stop for good after ``error``: release the strategies, mark the run folder failed."""
        self.running = False
        if self.simulation is not None:
            try:
                self.simulation.close()
            except Exception:
                pass
        if self.recorder is not None and self.recorder.manifest["status"] == "running":
            self.recorder.fail(error)
        self._release()

    def close(self) -> None:
        """Stop before the last round: release the strategies; a run folder is marked failed."""
        if self.running:
            r = self.simulation.round
            self._abort(RuntimeError(f"stopped after {r} of {self.scenario.run.rounds} rounds"))

    def __enter__(self) -> "MarketModel":
        return self

    def __exit__(self, kind, error, trace) -> bool:
        if error is not None and self.running:
            self._abort(error)
        self.close()
        return False

    def summary(self) -> dict[str, Any]:
        """The run's headline numbers so far, as in ``manifest.json`` (``bidscape.Run.summary``)."""
        return self.totals.summary()

    # ---- changing the market ----
    def apply(self, updates: Mapping[str, Any], source: str = "MarketModel.apply") -> None:
        """Change the market now, between rounds: takes effect from the next ``step()``."""
        self._check_settable(updates, "updates")
        self.simulation.apply(dict(updates), source=source)
        self.applied.append((self.simulation.round, dict(updates), source))

    def intervene(self, at_round: int, updates: Mapping[str, Any]) -> None:
        """Change the market before round ``at_round`` is played (``{"mechanism.reserve": 0.2}``).

        Same keys as a scenario's ``[[events]]``; checked now, applied through Mesa's event
        list when the model reaches that round. It fires before the scenario's own events of
        that round (which therefore win on a key set by both).
        """
        rounds = self.scenario.run.rounds
        if isinstance(at_round, bool) or not isinstance(at_round, (int, np.integer)):
            raise InputError(Problem("at_round", f"{at_round!r} is not a round number", "pass an integer"))
        at_round = int(at_round)
        if at_round < self.simulation.round:
            raise InputError(Problem("at_round", f"round {at_round} has already been played",
                                     f"use a round from {self.simulation.round} on, or apply(...) for now"))
        if at_round >= rounds:
            raise InputError(Problem("at_round", f"round {at_round} never comes: the run has rounds 0..{rounds - 1}",
                                     f"use a round below {rounds}"))
        self._check_settable(updates, f"intervention at round {at_round}")
        self.scenario.with_updates(dict(updates), source=f"intervention at round {at_round}")  # bad values now
        self._agenda.schedule(at_round, self._intervene_now, dict(updates), f"intervention at round {at_round}")

    def _intervene_now(self, updates: dict[str, Any], source: str) -> None:
        self.simulation.apply(updates, source=source)
        self.applied.append((self.simulation.round, updates, source))

    def _check_settable(self, updates: Mapping[str, Any], where: str) -> None:
        if not isinstance(updates, Mapping) or not updates:
            raise InputError(Problem(where, "expected a non-empty dict of changes",
                                     'pass e.g. {"mechanism.reserve": 0.2}'))
        for path in updates:
            if not any(fnmatch.fnmatchcase(str(path), pattern) for pattern in SETTABLE_DURING_RUN):
                raise InputError(Problem(f'{where}."{path}"', f"'{path}' cannot change during a run",
                                         "set one of: " + ", ".join(SETTABLE_DURING_RUN)))

    # ---- reporting ----
    def _report(self, result: RoundResult) -> dict[str, Any]:
        channels = self.simulation.channels()  # as played: changes made later wait for the next step
        slots = sum(c.auctions * c.totals.slots for c in result.channels)
        report: dict[str, Any] = {
            "round": result.round, "seed": self.scenario.run.seed, "auctions": result.auctions,
            "sold": result.sold, "revenue": result.revenue, "welfare": result.welfare,
            "sold_share": result.sold / slots if slots else 0.0,
            "mean_price": result.revenue / result.sold if result.sold else None,
            "reserve": channels[0].mechanism.reserve,
        }
        if len(channels) > 1:
            for channel, played in zip(channels, result.channels):
                report[f"revenue[{channel.name}]"] = played.totals.revenue
                report[f"sold[{channel.name}]"] = played.totals.sold
                report[f"reserve[{channel.name}]"] = channel.mechanism.reserve
        sums = self.cohorts.refresh(self.simulation)
        for p, name in enumerate(self.cohorts.population_names):
            report[f"spend[{name}]"] = float(sums["spend"][p])
            report[f"wins[{name}]"] = float(sums["wins"][p])
            report[f"mean_multiplier[{name}]"] = float(sums["multiplier"][p] / sums["agents"][p])
            report[f"budget_utilisation[{name}]"] = utilisation(sums["spend_to_date"][p], sums["budget"][p])
        return report

    def __repr__(self) -> str:
        return (f"MarketModel({self.scenario.run.name!r}, round {self.simulation.round} of "
                f"{self.scenario.run.rounds}, {len(self.agents)} cohorts)")


def _reported(key: str, model: MarketModel) -> Any:
    return model.report.get(key)
