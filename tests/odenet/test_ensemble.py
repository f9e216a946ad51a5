"""Ensembles: K members trained at once equal K single runs (float64, 1e-10)."""
import numpy as np
import pytest
import torch

from odenet import ResNet, train, train_ensemble
from odenet.datasets import circles, square


def _close(a, b, tol=1e-10):
    return max((x - y).abs().max().item() for x, y in zip(a, b)) <= tol


def _state(m):
    return [v for v in m.state_dict().values() if v.is_floating_point()]


@pytest.mark.parametrize("bn", [False, True])
def test_ensemble_equals_single_runs_circles(bn):
    d = circles(300, seed=1)
    kw = dict(input_map="activated", batchnorm=bn, output="sigmoid")
    make = lambda: ResNet(2, 2, 1, 4, eps=1.0, delta=0.5, **kw)  # noqa: E731
    seeds = [3, 0, 11]
    # with BatchNorm the pre-BN bias has a zero gradient (BN removes it), and Adam would turn its
    # rounding noise into steps of size lr: freeze it so both paths see the same problem
    freeze = ["field.bias"] if bn else []
    settings = dict(epochs=8, batch_size=32, loss="bce", freeze=freeze, progress=False)
    ens = train_ensemble(make(), d, seeds=seeds, **settings)
    for k, s in enumerate(seeds):
        single = train(make(), d, seed=s, **settings)
        member = ens.members[k]
        assert _close(_state(single.model), _state(member.model))
        assert np.allclose(single.val_loss, member.val_loss, rtol=0, atol=1e-10)
        assert np.allclose(single.batch_loss[1:], member.batch_loss[1:], rtol=0, atol=1e-10)
        assert single.best_epoch == member.best_epoch
        assert single.metrics == pytest.approx(member.metrics, abs=1e-10)
    # the members really differ (the comparison is not vacuous)
    assert not _close(_state(ens.members[0].model), _state(ens.members[1].model), 1e-3)
    assert ens.val_loss.shape == (3, 9) and ens.best_epoch.shape == (3,)


def test_ensemble_mse_with_overrides_freeze_and_eps_below_one():
    d = square(seed=0, val_fraction=0.2)
    make = lambda s: ResNet(1, 1, 1, 2, eps=0.5, delta=1.0, seed=s)  # noqa: E731  (a factory)
    W0 = torch.tensor([[[-2.0]], [[3.0]]], dtype=torch.float64)
    settings = dict(epochs=5, batch_size=10, overrides={"field.weight": W0}, freeze=["field.weight"],
                    select="last", progress=False)
    ens = train_ensemble(make, d, seeds=[0, 1], **settings)
    for k, s in enumerate([0, 1]):
        single = train(make, d, seed=s, **settings)
        assert _close(_state(single.model), _state(ens.members[k].model))
        assert torch.equal(ens.members[k].model.field.weight.detach(), W0)


def test_ensemble_bad_input():
    d = square(seed=0, val_fraction=0.2)
    with pytest.raises(ValueError, match="architecture"):
        train_ensemble([ResNet(1, 1, depth=1), ResNet(1, 1, depth=2)], d, seeds=[0, 1], epochs=1, progress=False)
    with pytest.raises(ValueError, match="seeds"):
        train_ensemble(ResNet(1, 1), d, seeds=[], epochs=1, progress=False)
    with pytest.raises(TypeError, match="ResNet"):
        train_ensemble(torch.nn.Linear(1, 1), d, seeds=[0], epochs=1, progress=False)


def test_batched_forward_matches_vmap_functional_call():
    """The ensemble's batched kernels against torch.func: stack_module_state + vmap(functional_call)
    over the members' own ResNet.forward (which must not write into out= buffers under vmap)."""
    from torch.func import functional_call, stack_module_state, vmap

    from odenet.ensemble import _Batched

    models = [ResNet(2, 2, 1, 5, eps=0.7, delta=0.4, input_map="activated", batchnorm=True, output="sigmoid",
                     seed=s) for s in range(4)]
    gen = torch.Generator().manual_seed(0)
    for m in models:  # non-trivial running statistics and BN affine parameters
        for bn in m.field.bn:
            bn.running_mean.uniform_(-0.5, 0.5, generator=gen)
            bn.running_var.uniform_(0.5, 2.0, generator=gen)
            bn.weight.data.uniform_(0.5, 1.5, generator=gen)
        m.eval()
    params, buffers = stack_module_state(models)
    x = torch.randn(4, 50, 2, dtype=torch.float64, generator=gen)
    ref = vmap(lambda p, b, xi: functional_call(models[0], (p, b), (xi,)))(params, buffers, x)
    ours = _Batched(models[0], models).forward(x, training=False, logits=False)
    assert torch.allclose(ours, ref, rtol=0, atol=1e-13)
    direct = torch.stack([m(x[k]) for k, m in enumerate(models)])
    assert torch.allclose(ours, direct, rtol=0, atol=1e-13)
