"""Sweeps (docs/sweeps.md): the sweep file, the folder layout, resume, interruption, backends.

Sizes are tiny (the ``TINY_SCENARIO`` of conftest.py, 3 rounds x 1,000 auctions); the
process-pool and Ray tests pay mostly for starting workers.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import polars as pl
import pytest
import typer
from typer.testing import CliRunner

import bidscape
from bidscape import InputError, Scenario
from bidscape.bidders.constant_shade import ConstantShade
from bidscape.sweep import SweepSpec, load_sweep, read_index, run_sweep
from bidscape.sweep import worker
from bidscape.sweep.cli import sweep as sweep_command
from bidscape.sweep.index import SweepIndex
from bidscape.sweep.names import grid_names

EXAMPLE = Path(__file__).resolve().parents[1] / "data" / "sweeps" / "reserve.toml"
GRID = {"mechanism.reserve": [0.0, 0.2], "populations.b.params.step": [0.1, 0.5]}


def write_sweep(folder: Path, body: str, scenario_text: str | None = None) -> Path:
    if scenario_text is not None:
        (folder / "scenario.toml").write_text(scenario_text)
    path = folder / "sweep.toml"
    path.write_text(body)
    return path


def sweep_text(body: str, seeds: str = "2") -> str:
    return f'[sweep]\nname = "s"\nscenario = "scenario.toml"\nseeds = {seeds}\n' + body


def grid_spec(scenario_file: Path, seeds=(1, 2)) -> SweepSpec:
    path = write_sweep(scenario_file.parent, sweep_text('[grid]\n"mechanism.reserve" = [0.0, 0.2]\n'
                                                        '"populations.b.params.step" = [0.1, 0.5]\n',
                                                        seeds=json.dumps(list(seeds))))
    return load_sweep(path)


def arrow_files(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.glob("*/seed-*/*.arrow"))}


def manifest(folder: Path) -> dict:
    return json.loads((folder / "manifest.json").read_text())


def recording_worker(monkeypatch) -> list[str]:
    """Record which runs ``run_one`` executes (in this process: use workers=1)."""
    calls: list[str] = []
    real = worker.run_one

    def run_one(scenario, folder, seed):
        calls.append(str(Path(folder).relative_to(Path(folder).parents[1])))
        return real(scenario, folder, seed)

    monkeypatch.setattr(worker, "run_one", run_one)
    return calls


@pytest.fixture
def scenario_file(tmp_path, write_scenario) -> Path:
    return write_scenario()


@pytest.fixture(scope="module")
def local_grid(tmp_path_factory, tiny_scenario_text):
    """A 2 x 2 grid x 2 seeds on the local backend with 2 worker processes."""
    root = tmp_path_factory.mktemp("grid")
    (root / "scenario.toml").write_text(tiny_scenario_text)
    spec = grid_spec(root / "scenario.toml")
    result = run_sweep(spec, root / "out", workers=2, progress=False)
    return spec, result


# ---- the sweep file ----

def test_typo_key_is_named_with_a_suggestion(tmp_path, scenario_file):
    path = write_sweep(tmp_path, sweep_text('[grid]\n"mechanism.reserve" = [0.1]\n').replace("seeds", "seed"))
    with pytest.raises(InputError, match=r"sweep\.seed: unknown key 'seed'.*did you mean 'seeds'"):
        load_sweep(path)
    path = write_sweep(tmp_path, sweep_text('[[variants]]\nname = "a"\nsett = {}\n'))
    with pytest.raises(InputError, match=r"variants\[0\]\.sett: unknown key 'sett'.*did you mean 'set'"):
        load_sweep(path)


def test_grid_and_variants_are_exclusive(tmp_path, scenario_file):
    both = sweep_text('[grid]\n"mechanism.reserve" = [0.1]\n[[variants]]\nname = "a"\n')
    with pytest.raises(InputError, match=r"a \[grid\] or \[\[variants\]\], not both"):
        load_sweep(write_sweep(tmp_path, both))
    with pytest.raises(InputError, match=r"no \[grid\] and no \[\[variants\]\]"):
        load_sweep(write_sweep(tmp_path, sweep_text("")))


def test_bad_override_names_the_variant(tmp_path, scenario_file):
    path = write_sweep(tmp_path, sweep_text('[grid]\n"mechanism.reserv" = [0.1]\n'))
    with pytest.raises(InputError, match=r"variant 'reserv=0.1'.*mechanism\.reserv: unknown key.*'reserve'"):
        load_sweep(path)
    path = write_sweep(tmp_path, sweep_text('[[variants]]\nname = "ok"\n[[variants]]\nname = "negative"\n'
                                            'set = { "mechanism.reserve" = -1.0 }\n'))
    with pytest.raises(InputError, match=r"variant 'negative'.*mechanism\.reserve"):
        load_sweep(path)
    path = write_sweep(tmp_path, sweep_text('[[variants]]\nname = "x"\nset = { "populations.nobody.size" = 3 }\n'))
    with pytest.raises(InputError, match=r"variant 'x'.*no item 'nobody'"):
        load_sweep(path)


@pytest.mark.parametrize("body, message", [
    ('[grid]\n"mechanism.reserve" = []\n', "has no values"),
    ('[grid]\n"mechanism.reserve" = [0.1, 0.1]\n', "lists 0.1 twice"),
    ('[grid]\nmechanism.reserve = [0.1]\n', 'quote dotted keys: "mechanism.reserve"'),
    ('[grid]\n"mechanism.reserve" = 0.5\n', "valid list"),
    ('[[variants]]\nname = "a"\n[[variants]]\nname = "A"\n', "used twice"),
    ('[[variants]]\nname = "a/b"\n', "cannot be a folder name"),
    ('[[variants]]\nname = "index.csv"\n', "file of the sweep folder"),
    ('[[variants]]\nname = "a"\nset = { "run.seed" = 4 }\n', "sweep's seeds"),
    ('[[variants]]\nname = "a"\nset = { run.rounds = 4 }\n', 'quote dotted keys: "run.rounds"'),
])
def test_bad_sweep_files(tmp_path, scenario_file, body, message):
    with pytest.raises(InputError, match=message):
        load_sweep(write_sweep(tmp_path, sweep_text(body)))


@pytest.mark.parametrize("seeds, message", [("0", "at least 1"), ("[1, 1]", "listed twice"), ("[-1]", ">= 0"),
                                            ('"4"', "a count or a list")])
def test_bad_seeds(tmp_path, scenario_file, seeds, message):
    with pytest.raises(InputError, match=message):
        load_sweep(write_sweep(tmp_path, sweep_text('[[variants]]\nname = "a"\n', seeds=seeds)))


def test_missing_scenario_file_is_named(tmp_path):
    path = write_sweep(tmp_path, sweep_text('[[variants]]\nname = "a"\n'))
    with pytest.raises(InputError, match=r"sweep\.scenario: scenario file .* does not exist"):
        load_sweep(path)


def test_grid_spec_resolves_every_point(tmp_path, scenario_file):
    spec = grid_spec(scenario_file, seeds=(3, 7))
    assert [v.name for v in spec.variants] == ["reserve=0,step=0.1", "reserve=0,step=0.5",
                                               "reserve=0.2,step=0.1", "reserve=0.2,step=0.5"]
    assert spec.seeds == [3, 7] and spec.swept_keys == list(GRID)
    last = spec.variants[-1]
    assert last.scenario.mechanism.reserve == 0.2 and last.scenario.populations[1].params["step"] == 0.5
    assert last.values == {"mechanism.reserve": 0.2, "populations.b.params.step": 0.5}
    count = write_sweep(tmp_path, sweep_text('[grid]\n"run.rounds" = [2]\n', seeds="3"))
    assert load_sweep(count).seeds == [1, 2, 3]


def test_grid_names_are_short_unique_and_safe():
    assert grid_names({"populations.a.params.step": [0.1], "populations.b.params.step": [2]}) == \
        ["a.params.step=0.1,b.params.step=2"]
    names = grid_names({"mechanism.type": ["first_price", "x/y"], "populations.a.values": [{"dist": "constant"}],
                        "run.record_agents": ["none"], "mechanism.slot_ctrs": [[0.3, 0.2], True]})
    assert names[0] == "type=first_price,values=v1,record_agents=none,slot_ctrs=v1"
    assert names[-1] == "type=x_y,values=v1,record_agents=none,slot_ctrs=true"
    assert grid_names({"a": ["x/y", "x_y"]}) == ["a=x_y", "a=x_y-2"]


def test_from_scenario_pairs_a_baseline_and_a_treatment(scenario_file):
    spec = SweepSpec.from_scenario(scenario_file, {"baseline": {}, "treatment": {"mechanism.reserve": 0.3}},
                                   [1, 2], "pair")
    assert [v.name for v in spec.variants] == ["baseline", "treatment"]
    assert spec.swept_keys == ["mechanism.reserve"]
    assert [v.values["mechanism.reserve"] for v in spec.variants] == [0.1, 0.3]  # baseline: the scenario's own
    assert spec.scenario_file == str(scenario_file)
    with pytest.raises(InputError, match=r"variant 'treatment'.*reserve"):
        SweepSpec.from_scenario(Scenario.from_toml(scenario_file), {"treatment": {"mechanism.reserve": -1}},
                                [1], "pair")


def test_example_sweep_finds_the_myerson_reserve(tmp_path):
    spec = load_sweep(EXAMPLE)
    assert len(spec.variants) * len(spec.seeds) <= 16
    result = run_sweep(spec, tmp_path / "out", workers=1, progress=False)
    assert result.failed == 0 and result.complete == len(result.index)
    revenue = (result.index.with_columns(revenue=pl.col("path").map_elements(
        lambda p: bidscape.Run(tmp_path / "out" / p).summary["market"]["revenue"], return_dtype=pl.Float64))
        .group_by("mechanism.reserve").agg(pl.col("revenue").mean()).sort("revenue"))
    assert revenue["mechanism.reserve"][-1] == 0.5  # theory: revenue peaks at the reserve 0.5


# ---- a grid on the local backend ----

def test_grid_on_two_workers_writes_the_layout(local_grid):
    spec, result = local_grid
    out = result.path
    index = read_index(out)
    assert index.equals(result.index)
    assert index.height == 8 and set(index["status"]) == {"complete"} and result.failed == 0
    assert index.columns == ["run_id", "variant", "seed", "path", "status", "wall_seconds", "error", *GRID]
    assert index.schema["mechanism.reserve"] == pl.Float64 and index.schema["seed"] == pl.Int64
    assert index["wall_seconds"].null_count() == 0 and index["error"].null_count() == 8
    assert pl.read_csv(out / "index.csv").height == 8
    stored = json.loads((out / "sweep.json").read_text())
    assert {"name", "scenario_file", "seeds", "variants", "version", "created"} <= set(stored)
    assert stored["variants"][1]["set"] == {"mechanism.reserve": 0.0, "populations.b.params.step": 0.5}
    for row in index.iter_rows(named=True):
        assert row["run_id"] == row["path"] == f"{row['variant']}/seed-{row['seed']}"
        assert manifest(out / row["path"])["status"] == "complete"


def test_grid_runs_equal_direct_runs(local_grid, tmp_path):
    spec, result = local_grid
    base = spec.variants[0].scenario
    for row in result.index.iter_rows(named=True):
        overrides = {key: row[key] for key in GRID}
        direct = bidscape.run(base.with_updates(overrides), out=tmp_path / row["run_id"], seed=row["seed"])
        tables = sorted(p.name for p in direct.path.glob("*.arrow"))
        assert {"market.arrow", "agents.arrow", "auctions.arrow"} <= set(tables)
        for table in tables:
            assert (result.path / row["path"] / table).read_bytes() == (direct.path / table).read_bytes(), \
                (row["run_id"], table)


# ---- resume ----

def test_resume_reruns_only_failed_and_missing_runs(tmp_path, scenario_file, monkeypatch):
    spec = grid_spec(scenario_file)
    out = tmp_path / "out"
    run_sweep(spec, out, workers=1, progress=False)
    failed, missing = "reserve=0,step=0.5/seed-1", "reserve=0.2,step=0.1/seed-2"
    m = manifest(out / failed)
    m["status"] = "failed"
    m["error"] = {"type": "RuntimeError", "message": "made up", "traceback": ""}
    (out / failed / "manifest.json").write_text(json.dumps(m))
    for file in (out / missing).iterdir():
        file.unlink()
    (out / missing).rmdir()
    untouched = {p: p.stat().st_mtime_ns for p in out.glob("*/seed-*/*") if failed not in str(p)}

    # without retrying failed runs: only the missing one runs, the failed one is reported
    calls = recording_worker(monkeypatch)
    result = run_sweep(spec, out, workers=1, progress=False, retry_failed=False)
    assert calls == [missing]
    assert result.failed == 1 and result.skipped == 6
    assert result.index.filter(run_id=failed)["error"].item() == "RuntimeError: made up"

    calls.clear()
    result = run_sweep(spec, out, workers=1, progress=False)
    assert calls == [failed]
    assert set(read_index(out)["status"]) == {"complete"} and result.skipped == 7
    assert {p: p.stat().st_mtime_ns for p in untouched} == untouched  # complete runs were not rewritten


def test_a_different_sweep_on_the_same_folder_is_refused(tmp_path, scenario_file):
    out = tmp_path / "out"
    spec = SweepSpec.from_scenario(scenario_file, {"a": {"run.rounds": 2}}, [1], "s")
    run_sweep(spec, out, workers=1, progress=False)
    changed = [SweepSpec.from_scenario(scenario_file, {"a": {"run.rounds": 2}}, [1, 2], "s"),
               SweepSpec.from_scenario(scenario_file, {"a": {"run.rounds": 3}}, [1], "s"),
               SweepSpec.from_scenario(scenario_file, {"b": {"run.rounds": 2}}, [1], "s")]
    for other, difference in zip(changed, ("seeds", "variant 'a' resolves to a different scenario", "variants")):
        with pytest.raises(InputError, match=rf"--out: .* holds a different sweep \({difference}.*another folder"):
            run_sweep(other, out, workers=1, progress=False)
    assert run_sweep(spec, out, workers=1, progress=False).skipped == 1  # the same sweep resumes
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="holds no sweep"):
        run_sweep(spec, tmp_path / "other", workers=1, progress=False)
    with pytest.raises(InputError, match="has no sweep index"):
        read_index(tmp_path / "other")


# ---- interruption ----

def test_interrupted_in_process_sweep_resumes(tmp_path, scenario_file, monkeypatch):
    spec = grid_spec(scenario_file)
    out = tmp_path / "out"
    real, calls = worker.run_one, []

    def interrupted_third(scenario, folder, seed):
        calls.append(folder)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(scenario, folder, seed)

    monkeypatch.setattr(worker, "run_one", interrupted_third)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(spec, out, workers=1, progress=False)
    index = read_index(out)
    assert index["status"].value_counts().sort("status").rows() == [("complete", 2), ("pending", 6)]
    assert index.filter(status="complete")["seed"].to_list() == [1, 1]  # seed by seed: pairs come first

    monkeypatch.setattr(worker, "run_one", real)
    calls = recording_worker(monkeypatch)
    result = run_sweep(spec, out, workers=1, progress=False)
    assert len(calls) == 6 and result.skipped == 2 and set(result.index["status"]) == {"complete"}


def test_interrupted_pool_leaves_a_consistent_index(tmp_path, scenario_file, monkeypatch):
    spec = grid_spec(scenario_file)
    out = tmp_path / "out"
    real_write, writes = SweepIndex.write, []

    def write(self):  # Ctrl-C in the parent, right after the first result
        writes.append(1)
        if len(writes) == 2:
            raise KeyboardInterrupt
        return real_write(self)

    monkeypatch.setattr(SweepIndex, "write", write)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(spec, out, workers=2, progress=False)
    monkeypatch.setattr(SweepIndex, "write", real_write)
    index = read_index(out)
    assert 1 <= index.filter(status="complete").height < 8 and set(index["status"]) <= {"complete", "pending"}
    for row in index.iter_rows(named=True):  # the index says what the folders say
        folder = out / row["path"]
        done = (folder / "manifest.json").is_file() and manifest(folder)["status"] == "complete"
        assert done == (row["status"] == "complete"), row["run_id"]
    result = run_sweep(spec, out, workers=1, progress=False)
    assert set(result.index["status"]) == {"complete"}
    assert result.skipped == index.filter(status="complete").height


# ---- failures and the command ----

def test_failing_variant_is_recorded_and_the_command_exits_1(tmp_path, scenario_file, monkeypatch):
    def broken(self, round_index):
        raise RuntimeError("shading broke")

    monkeypatch.setattr(ConstantShade, "decide", broken)
    path = write_sweep(tmp_path, sweep_text(
        '[[variants]]\nname = "ok"\n[[variants]]\nname = "broken"\n'
        'set = { "populations.a.strategy" = "constant_shade", "populations.a.params" = { multiplier = 0.9 } }\n'))
    app = typer.Typer()
    app.command()(sweep_command)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, [str(path), "--out", str(out), "--workers", "1", "-q"])
    assert result.exit_code == 1, result.output
    assert "broken/seed-1: RuntimeError: shading broke" in result.output
    assert str(out / "index.arrow") in result.output
    index = read_index(out)
    assert index.filter(variant="ok")["status"].to_list() == ["complete", "complete"]
    assert index.filter(variant="broken")["status"].to_list() == ["failed", "failed"]
    assert index.filter(variant="broken")["error"].to_list() == ["RuntimeError: shading broke"] * 2
    assert index.schema["populations.a.strategy"] == pl.String
    assert manifest(out / "broken" / "seed-1")["status"] == "failed"

    monkeypatch.undo()  # fixed: resuming reruns the failed runs only, and the command exits 0
    result = CliRunner().invoke(app, [str(path), "--out", str(out), "--workers", "1", "-q"])
    assert result.exit_code == 0, result.output
    assert set(read_index(out)["status"]) == {"complete"}


def test_bad_backend_settings_are_input_errors(tmp_path, scenario_file, monkeypatch):
    spec = SweepSpec.from_scenario(scenario_file, {"a": {}}, [1], "s")
    with pytest.raises(InputError, match="--address: a cluster address needs the ray backend"):
        run_sweep(spec, tmp_path / "out", address="auto", progress=False)
    with pytest.raises(InputError, match="--workers"):
        run_sweep(spec, tmp_path / "out", workers=0, progress=False)
    if importlib.util.find_spec("ray") is not None:  # a cluster address nobody answers at
        with pytest.raises(InputError, match="--address: nothing answers at '127.0.0.1:1'"):
            run_sweep(spec, tmp_path / "out", backend="ray", address="127.0.0.1:1", progress=False)
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ray" else real(name, *a))
    with pytest.raises(InputError, match=r"install the ray extra: pip install 'bidscape\[ray\]'"):
        run_sweep(spec, tmp_path / "out", backend="ray", progress=False)
    assert not (tmp_path / "out").exists()  # refused before anything was written


# ---- Ray ----

@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray")
    import logging

    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level=logging.ERROR,
             log_to_driver=False)
    yield ray
    ray.shutdown()


def test_ray_backend_writes_the_same_bytes(local_grid, local_ray, tmp_path):
    spec, local = local_grid
    result = run_sweep(spec, tmp_path / "ray", backend="ray", progress=False)
    assert local_ray.is_initialized()  # it used the running instance and left it running
    assert result.index.select("run_id", "status").equals(local.index.select("run_id", "status"))
    assert result.index.drop("wall_seconds").equals(local.index.drop("wall_seconds"))
    ray_files, local_files = arrow_files(tmp_path / "ray"), arrow_files(local.path)
    assert len(local_files) >= 8 * 3 and ray_files.keys() == local_files.keys()
    for name in local_files:
        assert ray_files[name] == local_files[name], name


def test_the_sweep_command_ends_with_the_headline_metrics_against_the_swept_parameter(tmp_path):
    app = typer.Typer()
    app.command()(sweep_command)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, [str(EXAMPLE), "--out", str(out), "--workers", "1", "-q"])
    assert result.exit_code == 0, result.output
    from bidscape.sweep.summary import summarise

    spec = load_sweep(EXAMPLE)
    summary = summarise(out, read_index(out), spec.swept_keys)
    assert summary["mechanism.reserve"].to_list() == [0.0, 0.25, 0.5, 0.75] and set(summary["n"]) == {3}
    lines = [line for line in result.output.splitlines() if line.strip().startswith(("0.0 ", "0.25", "0.5 ", "0.75"))]
    assert len(lines) == 4 and "mechanism.reserve" in result.output and "revenue" in result.output
    for line, row in zip(lines, summary.iter_rows(named=True)):
        assert f"{row['revenue']:,.0f} ± " in line  # the table prints bidscape.analysis.headline's means
    # theory (2 bidders, U[0, 1], second price): revenue per auction 1/3 + r^2 - 4 r^3 / 3
    auctions = 4 * 20_000
    covered = sum(row["revenue_low"] <= (1 / 3 + r * r - 4 * r ** 3 / 3) * auctions <= row["revenue_high"]
                  for r, row in zip(summary["mechanism.reserve"], summary.iter_rows(named=True)))
    assert covered >= 3  # 95% intervals: at most 2 of 4 covering has probability < 0.1%
    plot = out / "summary.png"
    assert f"plot: {plot}" in " ".join(result.output.split())
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and plot.stat().st_size > 10_000
