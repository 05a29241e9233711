"""Pure domain: no I/O, no HTTP, no database. Everything else builds on it."""

from __future__ import annotations
