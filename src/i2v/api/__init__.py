"""HTTP API: the WaveSpeed v3 and RunComfy dialects over one canonical Prediction."""

from __future__ import annotations
