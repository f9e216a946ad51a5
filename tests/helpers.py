"""Helpers shared by the test packages."""
import torch


def with_random_batchnorm(model, seed: int = 0):
    """Give every BatchNorm of ``model``'s blocks non-trivial running statistics and affine
    parameters, and put the model in eval mode (so that BN is a fixed affine map)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for bn in model.field.bn:
            m = bn.num_features
            bn.running_mean.copy_(torch.randn(m, generator=g, dtype=torch.float64))
            bn.running_var.copy_(torch.rand(m, generator=g, dtype=torch.float64) + 0.5)
            bn.weight.copy_(torch.randn(m, generator=g, dtype=torch.float64))
            bn.bias.copy_(torch.randn(m, generator=g, dtype=torch.float64))
    return model.eval()
