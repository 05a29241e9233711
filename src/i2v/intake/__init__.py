"""Intake: turn a user's image input into validated RGB pixels, refusing anything unsafe.

`source` classifies an input value (data: URI, base64, URL), `fetch` downloads URLs behind an
SSRF guard (`address` decides which IPs are reachable), `image` decodes and checks the rules.
"""

from __future__ import annotations
