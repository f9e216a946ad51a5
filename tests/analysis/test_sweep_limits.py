"""Size limits: a sweep of more runs than --max-runs is refused from the count of its axes (never
expanded), a model or data set larger than the available memory is refused with the estimate
before anything is allocated, and seeds follow the project's one seed rule."""
from __future__ import annotations

import multiprocessing
import os
import resource
import sys

import pytest

from analysis.experiments.sweep import SweepSpecError, load_spec
from analysis.experiments.sweep import limits
from analysis.experiments.sweep.spec import count_runs
from sweep_helpers import tiny_sweep

HUGE_SEEDS = '[dataset]\nname = "circles"\nn = 60\n[grid]\nseed = {range = [0, 100000000, 1]}\n'
HUGE_GRID = ('[dataset]\nname = "circles"\nn = 60\n[grid]\neps = {linspace = [0.1, 1, 1000]}\n'
             'seed = {range = [0, 1000, 1]}\n')
HUGE_DEPTH = '[dataset]\nname = "circles"\nn = 60\n[model]\ndepth = 1000000000\n'


raw = tiny_sweep


def _child(argv: list[str], out: str, err: str) -> None:
    # 2 GiB more address space than now: a child that tried to expand or allocate fails, not swaps
    with open("/proc/self/status") as fh:
        size = next(int(ln.split()[1]) * 1024 for ln in fh if ln.startswith("VmSize:"))
    resource.setrlimit(resource.RLIMIT_AS, (size + (2 << 30), size + (2 << 30)))
    with open(out, "w") as o, open(err, "w") as e:
        sys.stdout, sys.stderr = o, e
        from odenet.cli import main

        code = main(argv)
        o.flush(), e.flush()
    os._exit(code)


def odenet_sweep(tmp_path, text: str, *args: str) -> tuple[int, str, str]:
    """``odenet sweep FILE --out o ARGS`` in a forked child (the imports are done: no start-up
    cost) with a 30 s limit that only says "does not hang": (exit status, stdout, stderr)."""
    f = tmp_path / "s.toml"
    f.write_text(text)
    out, err = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
    proc = multiprocessing.get_context("fork").Process(
        target=_child, args=(["sweep", str(f), "--out", str(tmp_path / "o"), *args], str(out), str(err)))
    proc.start()
    proc.join(30)
    if proc.is_alive():
        proc.kill()
        pytest.fail(f"odenet sweep {args} still running after 30 s")
    return proc.exitcode, out.read_text(), err.read_text()


@pytest.mark.parametrize("text, count", [(HUGE_SEEDS, 100_000_000), (HUGE_GRID, 1_000_000)])
def test_huge_sweeps_are_refused_by_counting_even_in_a_dry_run(tmp_path, text, count):
    # timeout=30 only says "does not hang": listing 10**8 runs would take far longer (or run out of the 6 GiB)
    for extra in (["--dry-run"], ["--workers", "0"]):
        code, _, err = odenet_sweep(tmp_path, text, *extra)
        assert code == 2, err
        assert f"{count} runs" in err and "--max-runs" in err and "100000" in err
        assert not (tmp_path / "o.d").exists()


def test_max_runs_is_the_boundary():
    spec = raw(grid={"eps": [0.5, 1.0], "seed": {"range": [0, 3, 1]}})
    assert len(load_spec(spec, max_runs=6).runs) == 6
    with pytest.raises(SweepSpecError,
                       match=r"6 runs \(grid\.eps 2 x grid\.seed 3\), more than max_runs \(--max-runs\) = 5"):
        load_spec(spec, max_runs=5)
    with pytest.raises(SweepSpecError, match=r"random\.samples 4"):
        load_spec(raw(grid={"eps": [0.5, 1.0]}, random={"samples": 4, "lr": {"low": 0.01, "high": 0.1}}),
                  max_runs=7)
    for bad in (0, -1, 2.5, True):
        with pytest.raises(SweepSpecError, match=r"max_runs \(--max-runs\) must be a positive integer; got"):
            load_spec(spec, max_runs=bad)


def test_count_is_the_product_of_the_axes():
    # against the expansion itself (repeated values aside, the count is exact)
    grid = {"eps": {"linspace": [0.1, 1.0, 4]}, "depth": {"range": [2, 11, 3]}, "seed": [0, 1]}
    spec = load_spec(raw(grid=grid, random={"samples": 2, "lr": {"low": 0.01, "high": 0.1}}))
    assert len(spec.runs) == 4 * len(range(2, 11, 3)) * 2 * 2 == count_runs({"eps": 4, "depth": 3, "seed": 2}, 2)


def test_cli_max_runs_option(tmp_path):
    text = '[dataset]\nname = "circles"\nn = 60\n[grid]\nseed = [0, 1, 2]\n'
    code, _, err = odenet_sweep(tmp_path, text, "--dry-run", "--max-runs", "2")
    assert code == 2 and "3 runs" in err and "--max-runs" in err and "= 2" in err
    code, out, err = odenet_sweep(tmp_path, text, "--dry-run", "--max-runs", "3")
    assert code == 0 and "3 runs (0 done, 3 pending)" in out, err


def test_a_model_too_large_for_the_memory_is_refused_before_allocation(tmp_path):
    code, _, err = odenet_sweep(tmp_path, HUGE_DEPTH, "--dry-run")  # 10**9 blocks: ~50 GB of weights alone
    assert code == 2, err
    assert "'depth': 1000000000" in err and "memory available" in err and "TiB" in err
    assert not (tmp_path / "o.d").exists()


def test_memory_estimate_against_the_available_memory(monkeypatch, tmp_path):
    from odenet import ResNet, make_dataset

    model = {"width": 50, "depth": 1000, "input_map": "activated", "batchnorm": True}
    net = ResNet(2, 50, 1, 1000, input_map="activated", batchnorm=True)
    scalars = sum(p.numel() for p in net.parameters()) + sum(b.numel() for b in net.buffers() if b.is_floating_point())
    assert limits.model_parameters(2, model) == scalars  # P counts what the model holds
    n = len(make_dataset("circles", n=60).x_train)
    need = limits.task_memory(2, n, model, {"batch_size": 30}, members=3)
    assert need == 8 * 3 * (4 * scalars + 3 * 30 * 50 * 1001 + n * 3)
    spec = raw(model=dict(model, depth=1000), sweep={"name": "t", "ensemble_size": 3}, grid={"seed": [0, 1, 2]})
    import analysis.experiments.sweep.spec as spec_module

    monkeypatch.setattr(spec_module, "available_memory", lambda: need - 1)
    with pytest.raises(SweepSpecError, match=r"training 3 run\(s\) of model \{'width': 50, 'depth': 1000"):
        load_spec(spec)
    monkeypatch.setattr(spec_module, "available_memory", lambda: need)
    assert len(load_spec(spec).runs) == 3
    # --ensemble-size 4 cannot train more than the 3 runs there are: still fits
    from analysis.experiments.sweep import run_sweep
    from analysis.experiments.sweep.spec import check_memory

    check_memory(load_spec(spec), make_dataset("circles", n=60), ensemble_size=4)
    one = spec | {"sweep": {"name": "t", "ensemble_size": 1}}
    monkeypatch.setattr(spec_module, "available_memory", lambda: need // 3)
    with pytest.raises(SweepSpecError, match=r"training 3 run\(s\).*--ensemble-size; now 3"):
        run_sweep(load_spec(one), tmp_path / "o", workers=0, ensemble_size=3, progress=False)
    assert not (tmp_path / "o.d").exists()
    with pytest.raises(SweepSpecError, match=r"dataset\.n = 10000000 needs about"):
        load_spec(raw(dataset={"name": "circles", "n": 10_000_000}))  # 1.2 GB estimated > need


@pytest.mark.parametrize("tables, key, value", [
    (dict(train={"seed": -1}), "train.seed", "-1"),
    (dict(grid={"seed": [0, -3]}), "grid.seed[1]", "-3"),
    (dict(grid={"seed": [1.5]}), "grid.seed[0]", "1.5"),
    (dict(sweep={"name": "t", "seed": -2}), "sweep.seed", "-2"),
    (dict(sweep={"name": "t", "seed": True}), "sweep.seed", "True"),
])
def test_seeds_follow_the_one_seed_rule(tables, key, value):
    with pytest.raises(SweepSpecError) as info:
        load_spec(raw(**tables))
    assert key in str(info.value) and value in str(info.value) and "non-negative integer" in str(info.value)


def test_random_integer_ranges_beyond_64_bits_are_named():
    with pytest.raises(SweepSpecError, match=r"random\.seed: integer low and high must lie in"):
        load_spec(raw(random={"samples": 2, "seed": {"low": 0, "high": 2**64, "integer": True}}))
