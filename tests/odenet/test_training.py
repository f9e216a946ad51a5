"""Training: a seed fixes everything, selection on validation only, retries, overrides, freezing."""
import numpy as np
import pytest
import torch

from odenet import ResNet
from odenet.datasets import circles, square
from odenet.training import evaluate, initialise, train


def _net(**kw):
    return ResNet(2, 2, 1, 3, eps=1.0, delta=0.5, input_map="activated", output="sigmoid", **kw)


@pytest.fixture(scope="module")
def data():
    return circles(240, seed=0)


def _params(m):
    return [p.detach().clone() for p in m.parameters()]


def test_same_seed_identical_weights_and_different_seed_differs(data):
    runs = [train(_net(), data, epochs=3, batch_size=16, loss="bce", seed=s, progress=False) for s in (4, 4, 5)]
    a, b, c = (_params(r.model) for r in runs)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert np.array_equal(runs[0].val_loss, runs[1].val_loss)
    assert not all(torch.equal(x, y) for x, y in zip(a, c))


def test_initialisation_is_resnet_seed(data):
    m = initialise(_net(), 11)
    ref = _net(seed=11)
    assert all(torch.equal(p, q) for p, q in zip(m.parameters(), ref.parameters()))


def test_best_epoch_selected_on_validation_and_test_never_used(data):
    r = train(_net(), data, epochs=6, batch_size=16, loss="bce", seed=1, progress=False)
    assert r.best_epoch == int(np.nanargmin(r.val_loss))
    # the kept weights are those of the best epoch: their validation loss is the recorded one
    assert evaluate(r.model, data.x_val, data.y_val, "bce")[0] == pytest.approx(r.val_loss[r.best_epoch], abs=1e-14)
    assert r.metrics["val_loss"] == pytest.approx(r.best_val_loss, abs=1e-14)
    # history shapes: entry 0 before training
    assert r.train_loss.shape == r.val_loss.shape == (7,) and np.isnan(r.batch_loss[0])
    # scrambling the test labels changes nothing in training
    data2 = circles(240, seed=0)
    data2.y_test = 1 - data2.y_test
    r2 = train(_net(), data2, epochs=6, batch_size=16, loss="bce", seed=1, progress=False)
    assert all(torch.equal(p, q) for p, q in zip(r.model.parameters(), r2.model.parameters()))
    assert r2.metrics["test_accuracy"] == pytest.approx(1 - r.metrics["test_accuracy"])


def test_select_last_keeps_final_weights(data):
    r = train(_net(), data, epochs=4, batch_size=16, loss="bce", seed=2, select="last", progress=False)
    assert r.best_epoch == 4
    assert evaluate(r.model, data.x_train, data.y_train, "bce")[0] == pytest.approx(r.train_loss[4], abs=1e-14)


def test_retry_records_every_seed(data):
    r = train(_net(), data, epochs=2, batch_size=16, loss="bce", seed=7, retry_threshold=1e-9, max_tries=3,
              progress=False)
    assert r.seeds_tried == [7, 8, 9] and len(r.best_val_per_seed) == 3
    assert r.seed == [7, 8, 9][int(np.argmin(r.best_val_per_seed))]
    r1 = train(_net(), data, epochs=2, batch_size=16, loss="bce", seed=7, retry_threshold=10.0, max_tries=3,
               progress=False)
    assert r1.seeds_tried == [7] and r1.seed == 7


def test_overrides_and_freeze_on_square():
    d = square(seed=0)
    net = ResNet(1, 1, 1, 2, eps=1.0, delta=0.3)
    W0 = torch.tensor([[[-5.0]], [[5.0]]], dtype=torch.float64)
    r = train(net, d, epochs=2, batch_size=10, seed=0, select="last", overrides={"field.weight": W0},
              freeze=["field.weight"], progress=False)
    assert torch.equal(r.model.field.weight.detach(), W0)
    assert r.model.field.weight.requires_grad  # flags restored after training
    init = initialise(ResNet(1, 1, 1, 2, eps=1.0, delta=0.3), 0)
    assert not torch.equal(r.model.field.bias, init.field.bias)  # the rest trained
    # a callable override: start from chosen weights, all trained
    r2 = train(ResNet(1, 1, 1, 2, eps=1.0, delta=0.3), d, epochs=1, batch_size=10, seed=0, select="last",
               overrides=lambda m: m.set_block(0, -5.0).set_block(1, 5.0), progress=False)
    assert not torch.equal(r2.model.field.weight.detach(), W0)
    assert (r2.model.field.weight.detach() - W0).abs().max() <= 30 * 0.01 + 1e-12  # 30 Adam steps of size <= lr


def test_factory_and_xy_data():
    x = torch.linspace(-1, 1, 50, dtype=torch.float64)[:, None]
    r = train(lambda s: ResNet(1, 1, 1, 1, seed=s), (x, x ** 2), epochs=2, batch_size=10, seed=3, val_split=0.2,
              progress=False)
    assert r.seed == 3 and r.model.seed == 3 and np.isfinite(r.val_loss).all()


def test_progress_bar_writes(data, capsys):
    train(_net(), data, epochs=2, batch_size=64, loss="bce", seed=0, progress=True)
    assert "train seed 0" in capsys.readouterr().err


def test_bad_input(data):
    with pytest.raises(ValueError, match="epochs"):
        train(_net(), data, epochs=0, progress=False)
    with pytest.raises(ValueError, match="loss"):
        train(_net(), data, epochs=1, loss="hinge", progress=False)
    with pytest.raises(ValueError, match="best_val"):
        train(ResNet(1, 1), square(), epochs=1, progress=False)
    with pytest.raises(ValueError, match="bce"):
        train(ResNet(1, 1), square(), epochs=1, loss="bce", select="last", progress=False)
    with pytest.raises(ValueError, match="freeze"):
        train(_net(), data, epochs=1, freeze=["nope"], progress=False)
    with pytest.raises(ValueError, match="seed must be a non-negative integer below 2\\*\\*63; got -2"):
        train(_net(), data, epochs=1, seed=-2, progress=False)
    with pytest.raises(TypeError, match="seed"):
        train(_net(), data, epochs=1, seed=True, progress=False)
