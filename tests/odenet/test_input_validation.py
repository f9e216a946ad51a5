"""Bad input at odenet's entry points (issue 12): one test per rule, each asserting that the message
names the argument and the value, and that the refusal comes before any work (nothing trained,
written or allocated)."""
import numpy as np
import pytest
import torch

from analysis import hdf5
from odenet import ResNet, train, train_ensemble
from odenet.cli import main
from odenet.datasets import circles, square, xor

HUGE = 10 ** 4, 10 ** 5  # depth, width: 8e14 bytes of weights, more than any machine has


def _xy(n=20, n_in=2, q=1, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, n_in, dtype=torch.float64, generator=g)
    return x, torch.randn(n, q, dtype=torch.float64, generator=g)


def _never(seed):
    raise AssertionError("a model was built before the data were checked")


# --- one seed rule: 0 <= seed < 2**63, integers only ----------------------------------------------
SEED_CALLS = {
    "ResNet": lambda s: ResNet(2, 2, 1, 1, seed=s),
    "xor": lambda s: xor(n=20, seed=s),
    "train": lambda s: train(ResNet(2, 2, 1, 1), _xy(), epochs=1, seed=s, select="last", progress=False),
    "train_ensemble": lambda s: train_ensemble(ResNet(2, 2, 1, 1), _xy(), seeds=[0, s], epochs=1, select="last",
                                               progress=False),
}


@pytest.mark.parametrize("where", sorted(SEED_CALLS))
@pytest.mark.parametrize("seed, error, shown", [(-1, ValueError, "-1"), (2 ** 63, ValueError, str(2 ** 63)),
                                                (1.0, TypeError, "1.0"), (True, TypeError, "True")])
def test_every_api_entry_refuses_the_same_seeds(where, seed, error, shown):
    name = "seeds[1]" if where == "train_ensemble" else "seed"
    with pytest.raises(error, match=rf"{name.replace('[', '.').replace(']', '.')} must be a non-negative integer "
                                    rf"below 2\*\*63; got {shown}"):
        SEED_CALLS[where](seed)


def test_seed_bounds_and_numpy_integers_are_accepted():
    top = ResNet(2, 2, 1, 1, seed=2 ** 63 - 1)
    assert top.seed == 2 ** 63 - 1 and type(top.seed) is int
    a, b = ResNet(2, 2, 1, 2, seed=np.int64(7)), ResNet(2, 2, 1, 2, seed=7)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert type(a.seed) is int  # a NumPy seed is stored as a plain int (configs go to JSON/HDF5)


@pytest.mark.parametrize("argv", [["demo", "--seed", "-1"], ["demo", "--seed", str(2 ** 63)],
                                  ["converge", "--seed", "-1"],
                                  ["tunnel", "--seed", "-1", "--quiet"], ["tunnel", "--data-seed", "-3", "--quiet"]])
def test_cli_seeds_follow_the_same_rule(argv, capsys, monkeypatch):
    import odenet
    import odenet.datasets

    def no_work(*a, **k):
        raise AssertionError("worked before refusing the seed")
    monkeypatch.setattr(odenet, "ResNet", no_work)
    monkeypatch.setattr(odenet, "train", no_work)
    monkeypatch.setattr(odenet.datasets, "circles", no_work)
    assert main(argv) == 2
    flag = "--data-seed" if "--data-seed" in argv else "--seed"
    value = argv[argv.index(flag) + 1]
    err = capsys.readouterr().err
    assert f"odenet {argv[0]}: error: {flag} must be a non-negative integer below 2**63; got {value}" in err


# --- training data ----------------------------------------------------------------------------
@pytest.mark.parametrize("which, index, value", [("x", (3, 1), float("nan")), ("y", (0, 0), float("inf")),
                                                 ("x", (7, 0), -float("inf"))])
def test_non_finite_training_data_is_named_and_counted(which, index, value):
    x, y = _xy()
    arr = x if which == "x" else y
    arr[index] = value
    arr[-1, 0] = float("nan")  # a second bad entry: the count says 2
    with pytest.raises(ValueError, match=rf"{which} must be finite; got 2 non-finite \(NaN or inf\) of "
                                         rf"{arr.numel()} entries, the first at index \({index[0]}, {index[1]}\)"):
        train(_never, (x, y), epochs=1, select="last", progress=False)


def test_non_finite_dataset_split_is_named():
    data = xor(n=50, seed=0)
    data.y_val[2, 0] = float("nan")
    with pytest.raises(ValueError, match=r"y_val must be finite; got 1 non-finite"):
        train_ensemble(_never, data, seeds=[0, 1], epochs=1, progress=False)


def test_inputs_and_targets_of_different_lengths():
    x, y = _xy(10)
    with pytest.raises(ValueError, match=r"x has 10 points, y has 9"):  # was an IndexError with val_split
        train(_never, (x, y[:9]), epochs=1, val_split=0.2, progress=False)


@pytest.mark.parametrize("n_out, y_shape", [(1, (20, 3)), (2, (20, 1)), (3, (20, 2))])
def test_target_shape_must_match_the_outputs(n_out, y_shape):
    x, _ = _xy()
    y = torch.zeros(y_shape, dtype=torch.float64)
    pattern = rf"y_train has shape \({y_shape[0]}, {y_shape[1]}\) but the model has {n_out} output\(s\)"
    with pytest.raises(ValueError, match=pattern):
        train(ResNet(2, 2, n_out, 1), (x, y), epochs=1, select="last", progress=False)
    with pytest.raises(ValueError, match=pattern):
        train_ensemble(ResNet(2, 2, n_out, 1), (x, y), seeds=[0, 1], epochs=1, select="last", progress=False)


def test_one_dimensional_targets_are_one_output():
    # (N,) is (N, 1), not broadcast: the trained loss equals the loss on the (N, 1) target
    x, y = _xy()
    a = train(ResNet(2, 2, 1, 1), (x, y[:, 0]), epochs=2, select="last", progress=False)
    b = train(ResNet(2, 2, 1, 1), (x, y), epochs=2, select="last", progress=False)
    assert np.array_equal(a.train_loss, b.train_loss)
    with torch.no_grad():  # epoch 0: the seed-0 initial model, whose loss on (N, 1) targets is known
        expected = ((ResNet(2, 2, 1, 1, seed=0)(x) - y) ** 2).mean().item()
    assert a.train_loss[0] == pytest.approx(expected, rel=1e-12)


def test_inputs_must_match_the_model_width():
    x, y = _xy(n_in=3)
    with pytest.raises(ValueError, match=r"the inputs have 3 features .* the model has n_in=2"):
        train(ResNet(2, 2, 1, 1), (x, y), epochs=1, select="last", progress=False)


def test_bce_with_a_linear_output_is_refused():
    x, _ = _xy()
    y = (x[:, :1] > 0).to(torch.float64)
    for call in (lambda: train(ResNet(2, 2, 1, 1, output="linear"), (x, y), epochs=1, loss="bce",
                               select="last", progress=False),
                 lambda: train_ensemble(ResNet(2, 2, 1, 1), (x, y), seeds=[0], epochs=1, loss="bce",
                                        select="last", progress=False)):
        with pytest.raises(ValueError, match=r"loss='bce' .* output is 'linear'; use output='sigmoid' .* "
                                             r"or loss='mse'"):
            call()


# --- data sets large enough for their splits --------------------------------------------------
def _smallest_valid_n(make, fractions):
    """The smallest n whose splits are all non-empty, found by building the data sets."""
    for n in range(1, 200):
        try:
            d = make(n)
        except ValueError:
            continue
        assert len(d.x_train) >= 1
        assert len(d.x_val) >= 1 or fractions[0] == 0
        assert len(d.x_test) >= 1 or fractions[1] == 0
        return n


@pytest.mark.parametrize("make, fractions", [
    (lambda n: xor(n=n), (0.1, 0.2)),
    (lambda n: square(n=n, val_fraction=0.3, test_fraction=0.05), (0.3, 0.05)),
    (lambda n: circles(n=n, val_fraction=0.25, test_fraction=0.25), (0.25, 0.25)),
])
def test_too_small_datasets_name_the_minimum_n(make, fractions):
    m = _smallest_valid_n(make, fractions)
    # the minimum by hand: round(f n) >= 1 needs f n > 1/2 (round half to even)
    assert m >= max(int(0.5 / f) + 1 for f in fractions)
    with pytest.raises(ValueError, match=rf"n={m - 1} is too small .*the smallest n that gives these splits is {m}$"):
        make(m - 1)


def test_xor_of_one_point_is_refused():
    # 0.1 n > 1/2 needs n >= 6; xor(n=1) used to return empty validation and test splits
    with pytest.raises(ValueError, match=r"n=1 is too small for val_fraction=0.1, test_fraction=0.2.*"
                                         r"the smallest n that gives these splits is 6$"):
        xor(n=1)
    d = xor(n=6)
    assert (len(d.x_train), len(d.x_val), len(d.x_test)) == (4, 1, 1)


def test_circles_refuses_an_empty_class():
    with pytest.raises(ValueError, match=r"n=5 with inner_fraction=0.05 leaves a class empty \(0 inner, 5 outer"):
        circles(n=5, inner_fraction=0.05, val_fraction=0.2, test_fraction=0.2)


def test_huge_datasets_are_refused_before_allocating():
    with pytest.raises(ValueError, match=r"a data set of n=10000000000000 points needs about .* more than"):
        xor(n=10 ** 13)


# --- ResNet -------------------------------------------------------------------------------------
@pytest.mark.parametrize("name, value, count", [("weight", [[float("nan"), 0.0], [0.0, float("nan")]], 2),
                                               ("bias", [0.0, float("inf")], 1)])
def test_set_block_refuses_non_finite_values(name, value, count):
    net = ResNet(2, 2, 1, 3, seed=0)
    before = [p.detach().clone() for p in net.parameters()]
    with pytest.raises(ValueError, match=rf"{name} must be finite; got {count} non-finite"):
        net.set_block(1, weight=0.5 if name == "bias" else value, bias=value if name == "bias" else None)
    assert all(torch.equal(p, q) for p, q in zip(net.parameters(), before))  # nothing written


@pytest.mark.parametrize("x, shown", [
    (torch.zeros(5, 3, dtype=torch.float64), r"shape \(5, 3\) and dtype torch.float64"),
    (torch.zeros(5, 2, dtype=torch.float32), r"shape \(5, 2\) and dtype torch.float32"),
    (torch.zeros(2, dtype=torch.float64), r"shape \(2,\) and dtype torch.float64"),
])
def test_wrong_width_or_dtype_into_the_model(x, shown):
    net = ResNet(2, 2, 1, 3, seed=0)
    pattern = rf"x must have shape \(batch, 2\) and dtype torch.float64 for this model \(n_in=2\); got {shown}"
    for f in (net, net.logits, net.states, net.solve):
        with pytest.raises(ValueError, match=pattern):
            f(x)


@pytest.mark.parametrize("kw, message", [(dict(depth=0), "depth must be an integer >= 1; got 0"),
                                         (dict(T=float("inf")), "T must be finite; got inf")])
def test_neural_ode_checks_before_dividing(kw, message):
    with pytest.raises(ValueError, match=message):  # was a ZeroDivisionError for depth=0
        ResNet.neural_ode(2, 2, 1, **kw)


def test_from_config_lists_missing_unknown_and_ill_typed_keys():
    with pytest.raises(ValueError, match=r"missing \['n_in', 'width', 'n_out', 'depth'\]"):
        ResNet.from_config({})
    cfg = dict(ResNet(2, 2, 1, 3, seed=0).config, widht=2, depth="3", dtype="float16", batchnorm=1)
    del cfg["n_out"]
    with pytest.raises(ValueError) as err:
        ResNet.from_config(cfg)
    msg = str(err.value)
    for part in ("missing ['n_out']", "unknown ['widht']", "depth='3' (must be an integer >= 1)",
                 "dtype='float16' (must be one of ['float32', 'float64'])", "batchnorm=1 (must be a bool)"):
        assert part in msg, part
    with pytest.raises(TypeError, match="config must be a dict"):
        ResNet.from_config([("n_in", 2)])


def test_from_config_takes_numpy_scalars_as_files_store_them():
    net = ResNet(2, 3, 1, 4, input_map="affine", batchnorm=True, seed=5)
    cfg = {k: (np.int64(v) if type(v) is int else np.float64(v) if type(v) is float else
               np.bool_(v) if type(v) is bool else v) for k, v in net.config.items()}
    back = ResNet.from_config(cfg)
    assert back.config == net.config
    assert all(torch.equal(p, q) for p, q in zip(back.parameters(), net.parameters()))


def test_oversized_models_are_refused_with_the_estimate():
    depth, width = HUGE
    count = depth * (width * width + width) + width + 1
    assert ResNet.parameter_count(2, width, 1, depth, input_map="affine") == count + 2 * width + width
    with pytest.raises(ValueError, match=rf"ResNet\(n_in={width}, width={width}, n_out=1, depth={depth}\) with "
                                         rf"{count} parameters needs about .* PiB of memory, more than"):
        ResNet(width, width, 1, depth)


# --- the command line: size limits and outputs, refused at once ---------------------------------
def test_demo_depth_cap(capsys):
    assert main(["demo", "--depth", "100000000"]) == 2  # returns at once instead of hanging
    err = capsys.readouterr().err
    assert "--depth must be in [1, 10000]" in err and "--depth 100000000" in err


def test_demo_width_cap(capsys):
    assert main(["demo", "--width", "100000"]) == 2
    assert "--width in [1, 256]" in capsys.readouterr().err


@pytest.fixture
def model_file(tmp_path):
    return hdf5.save_model(tmp_path / "m.h5", ResNet(2, 2, 1, 3, seed=0))


def test_trace_grid_too_large_for_memory(model_file, tmp_path, capsys):
    out = tmp_path / "t.h5"
    assert main(["trace", str(model_file), "--grid=0:1:100000,0:1:100000", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "tracing 10000000000 grid points (100000 x 100000) through 3 layers of width 2 needs about" in err
    assert not out.exists()


def test_trace_out_in_a_missing_folder_fails_before_loading(tmp_path, capsys):
    out = tmp_path / "nodir" / "x.h5"
    # the model does not exist either: the folder is checked first, before any reading or tracing
    assert main(["trace", str(tmp_path / "none.h5"), "--grid=0:1:5,0:1:5", "--out", str(out)]) == 2
    assert f"--out '{out}': the folder '{out.parent}' does not exist" in capsys.readouterr().err


def test_trace_existing_out_without_overwrite(model_file, tmp_path, capsys):
    out = tmp_path / "t.h5"
    out.write_bytes(b"not ours")
    assert main(["trace", str(model_file), "--grid=0:1:5,0:1:5", "--out", str(out), "--xdmf"]) == 2
    assert f"--out '{out}' exists; pass --overwrite" in capsys.readouterr().err
    assert out.read_bytes() == b"not ours"


@pytest.mark.parametrize("flag", ["--out", "--plot"])
def test_converge_output_in_a_missing_folder_fails_before_computing(flag, tmp_path, capsys, monkeypatch):
    import analysis.continuum.convergence

    def no_study(*a, **k):
        raise AssertionError("computed before checking the output folder")
    monkeypatch.setattr(analysis.continuum.convergence, "refinement_study", no_study)
    path = tmp_path / "nodir" / ("c.h5" if flag == "--out" else "c.png")
    assert main(["converge", "--quiet", flag, str(path)]) == 2
    assert f"{flag} '{path}': the folder '{path.parent}' does not exist" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["--depths", f"4:{2 ** 30}"], f"--depths must stay at or below {2 ** 20} steps per level"),
    (["--batch", str(10 ** 14)], f"--batch {10 ** 14} inputs of dimension 2 needs about"),
])
def test_converge_size_limits(argv, message, capsys, tmp_path):
    assert main(["converge", "--plot", str(tmp_path / "p.png"), "--quiet"] + argv) == 2
    assert message in capsys.readouterr().err


def test_tunnel_resolution_too_large_is_refused_before_training(capsys, monkeypatch):
    import odenet

    def no_training(*a, **k):
        raise AssertionError("trained before refusing --resolution")
    monkeypatch.setattr(odenet, "train", no_training)
    assert main(["tunnel", "--quiet", "--resolution", "1000000"]) == 2
    err = capsys.readouterr().err
    assert "resolution 1000000 (1000000000000 grid points)" in err and "needs about" in err


def test_ensembles_too_large_for_memory_are_refused_before_copying():
    # 10^5 members of a width-1024 model (identity input map): W, b, w_out, b_out are
    # 8 (1024² + 2 x 1024 + 1) bytes, held 6 times: about 4.6 TiB
    template = ResNet(1024, 1024, 1, 1)
    size = 8 * (1024 * 1024 + 2 * 1024 + 1)
    x, y = _xy(n_in=1024)
    with pytest.raises(ValueError, match=rf"an ensemble of 100000 members of {size} bytes each needs about "
                                         rf"4.6 TiB"):
        train_ensemble(template, (x, y), seeds=range(10 ** 5), epochs=1, select="last", progress=False)


@pytest.mark.parametrize("val, test, standardise", [(0.1, 0.2, False), (0.15, 0.3, True), (0.01, 0.0, False),
                                                    (0.0, 0.003, True), (0.45, 0.45, False), (0.33, 0.33, True)])
def test_the_named_minimum_n_is_the_smallest_that_works(val, test, standardise):
    from odenet.datasets import check_split_size

    def works(n):  # by hand: n_test = round(test n), n_val = round(val n), the rest trains
        n_test, n_val = round(test * n), round(val * n)
        return (n - n_val - n_test >= (2 if standardise else 1) and (n_val >= 1 or val == 0)
                and (n_test >= 1 or test == 0))
    smallest = next(n for n in range(1, 10_000) if works(n))
    with pytest.raises(ValueError, match=rf"the smallest n that gives these splits is {smallest}$"):
        check_split_size(1, val, test, standardise)
    check_split_size(smallest, val, test, standardise)
