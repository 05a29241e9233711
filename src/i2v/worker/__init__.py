"""Workers: claim predictions from the store, render, encode, store the output, finish."""

from __future__ import annotations
