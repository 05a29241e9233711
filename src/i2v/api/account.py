"""The WaveSpeed account balance: `GET /api/v3/balance` and `GET /api/v3/account/balance`.

WaveSpeed clients (its desktop app, SDK helpers, MCP tools) read the balance before they
submit and stop when it is empty. A self-hosted server charges nothing, so a key's balance
is `UNLIMITED_BALANCE`: large enough that no client refuses to submit, and the same on
every call, so that nobody mistakes it for money.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from i2v.api.deps import OwnerDep
from i2v.dialects.wavespeed import envelope

UNLIMITED_BALANCE = 1_000_000.0  # US dollars, in WaveSpeed's unit
CURRENCY = "USD"

routes = APIRouter()  # mounted under the WaveSpeed prefix


@routes.get("/balance", summary="Your balance (a large fixed value: nothing is charged)")
@routes.get("/account/balance", summary="Your balance, as WaveSpeed's account API answers it")
async def balance(owner: OwnerDep) -> dict[str, Any]:
    return envelope({"balance": UNLIMITED_BALANCE, "currency": CURRENCY})
