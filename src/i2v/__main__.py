from __future__ import annotations

from i2v.cli import main

main()
