"""Webhook signatures, one scheme per dialect (see the package docstring)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable

from i2v.delivery.secrets import SECRET_PREFIX
from i2v.domain.prediction import RUNCOMFY, WAVESPEED

Signer = Callable[[str, str, int, bytes], str]  # (secret, message id, timestamp, body)


def wavespeed_signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    key = secret.removeprefix(SECRET_PREFIX).encode()  # the text, not decoded: WaveSpeed's way
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return "v3," + hmac.new(key, signed, hashlib.sha256).hexdigest()


def standard_signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


SIGNERS: dict[str, Signer] = {WAVESPEED: wavespeed_signature, RUNCOMFY: standard_signature}
