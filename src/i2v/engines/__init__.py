"""Engines turn a GenerationRequest into frames. Heavy ones import torch lazily."""

from __future__ import annotations
