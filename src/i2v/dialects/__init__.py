"""How a Prediction reads in each client dialect: its JSON views and its media links.

Below both the API (which answers with the views) and webhook delivery (whose payload is
the same views), so neither needs the other.
"""

from __future__ import annotations
