"""L2 norms of the generator's and discriminator's gradients, tracked without per-step syncs."""

from __future__ import annotations

import torch
from torch import nn


def grad_norm(module: nn.Module) -> torch.Tensor:
    """L2 norm of all parameter gradients of `module` together (a 0-d tensor on its device)."""
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    if not grads:
        return torch.zeros(())
    norms = torch._foreach_norm(grads)  # one fused kernel per device/dtype group
    return torch.linalg.vector_norm(torch.stack([n.float() for n in norms]))


class GradNormTracker:
    """Mean and max of the G and D gradient norms since the last `flush`.

    The section III-A monitoring: spikes in these norms precede failures. Everything
    stays on the device until `flush` (called at evaluations), so recording every step
    costs one norm kernel and no host-device synchronization.
    """

    NAMES = ("g", "d")

    def __init__(self, device: torch.device) -> None:
        self.sums = torch.zeros(2, device=device, dtype=torch.float64)
        self.maxes = torch.zeros(2, device=device, dtype=torch.float64)
        self.counts = [0, 0]

    def record(self, which: str, module: nn.Module) -> None:
        """Record the current gradient norm of `module` as `which` ("g" or "d")."""
        i = self.NAMES.index(which)
        norm = grad_norm(module).to(self.sums.device, torch.float64)
        self.sums[i] += norm
        self.maxes[i] = torch.maximum(self.maxes[i], norm)
        self.counts[i] += 1

    def flush(self) -> dict[str, float]:
        """`grad_norm_{g,d}_{mean,max}` since the last flush, then start over."""
        sums, maxes = self.sums.tolist(), self.maxes.tolist()
        out = {}
        for i, name in enumerate(self.NAMES):
            if self.counts[i]:
                out[f"grad_norm_{name}_mean"] = sums[i] / self.counts[i]
                out[f"grad_norm_{name}_max"] = maxes[i]
        self.sums.zero_()
        self.maxes.zero_()
        self.counts = [0, 0]
        return out
