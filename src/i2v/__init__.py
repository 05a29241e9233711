"""i2v: a self-hosted image-to-video service.

Layers (imports flow downward only; checked by import-linter):

    cli                 composition root
    api | worker        siblings, never import each other
    engines             motion (CPU), diffusers (GPU), fake (tests)
    store | storage | video | intake
    domain              Prediction, Status, GenerationRequest, errors, settings
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["__version__"]
