"""The standard FID features: Inception-v3 pool3 (2048-d) through torch-fidelity."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from hpsearch.errors import ConfigError

WEIGHTS_FILE = "pt_inception-2015-12-05-6726825d.pth"
WEIGHTS_URL = f"https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/{WEIGHTS_FILE}"
INCEPTION_HOW = (f"install the extra (pip install -e '.[inception]') and either let torch-fidelity download "
                 f"{WEIGHTS_URL} into its cache or set metrics.inception_weights to a local copy of {WEIGHTS_FILE}")


class InceptionFeatures(nn.Module):
    """uint8 images (B, C, H, W) of any size → Inception pool3 features (B, 2048).

    Grey images are repeated to three channels; torch-fidelity resizes to 299×299 itself.
    """

    num_features = 2048

    def __init__(self, weights: str | None) -> None:
        super().__init__()
        try:
            from torchmetrics.image.fid import NoTrainInceptionV3
        except ImportError as exc:  # pragma: no cover - depends on the installed extras
            raise ConfigError(f"metrics.features inception: torch-fidelity is not installed; {INCEPTION_HOW}") from exc
        if weights is not None and not Path(weights).is_file():
            raise ConfigError(f"metrics.inception_weights: {weights} not found; {INCEPTION_HOW}")
        try:
            self.net = NoTrainInceptionV3(name="inception-v3-compat", features_list=["2048"],
                                          feature_extractor_weights_path=weights)
        except (ModuleNotFoundError, ImportError) as exc:
            raise ConfigError(f"metrics.features inception: torch-fidelity is not installed; {INCEPTION_HOW}") from exc
        except Exception as exc:  # a failed download surfaces as many exception types
            raise ConfigError(f"metrics.features inception: the weights could not be loaded ({exc}); "
                              f"{INCEPTION_HOW}") from exc
        self.net.eval()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.shape[1] == 1:
            images = images.expand(-1, 3, -1, -1)
        return self.net(images).float()  # (B, 2048)
