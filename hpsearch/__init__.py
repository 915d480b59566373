"""hpsearch: hyperparameter search for class-conditional GANs."""

from __future__ import annotations

__version__ = "0.1.0"
