"""`sn`: PyTorch's spectral norm exactly, with its parametrization kept out of compiled graphs."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from hpsearch.models.layers import EagerSpectralNorm, sn


@pytest.mark.parametrize("make", [lambda: nn.Linear(6, 5), lambda: nn.Conv2d(3, 4, 3),
                                  lambda: nn.ConvTranspose2d(4, 3, 4, 2, 1), lambda: nn.Embedding(3, 7)],
                         ids=["linear", "conv", "conv-transpose", "embedding"])
def test_sn_is_pytorchs_spectral_norm(make) -> None:  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    ours = sn(make(), True)
    torch.manual_seed(0)
    theirs = spectral_norm(make())
    assert isinstance(ours.parametrizations.weight[0], EagerSpectralNorm)
    assert ours.state_dict().keys() == theirs.state_dict().keys()  # checkpoints load either way
    for key, value in theirs.state_dict().items():
        torch.testing.assert_close(ours.state_dict()[key], value, rtol=0, atol=0, msg=key)
    for _ in range(3):  # training-mode calls run the power iteration: the same updates
        torch.testing.assert_close(ours.weight, theirs.weight, rtol=0, atol=0)
    torch.testing.assert_close(ours.parametrizations.weight[0]._u, theirs.parametrizations.weight[0]._u)


def test_sn_off_leaves_the_module_alone() -> None:
    layer = nn.Linear(3, 2)
    assert sn(layer, False) is layer and not hasattr(layer, "parametrizations")
