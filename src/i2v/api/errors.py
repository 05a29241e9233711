"""Domain errors -> HTTP, once, in each dialect's error envelope.

WaveSpeed: `{"code": <http status>, "message": ..., "data": null}`.
RunComfy (whose error body is undocumented; its numeric codes are):
`{"request_id": null, "error": {"code": 404001, "type": "ResourceNotFound", "message": ...}}`.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from i2v.domain.errors import (
    AuthError,
    Conflict,
    DatabaseUnavailable,
    Expired,
    Forbidden,
    I2VError,
    InputError,
    InsufficientStorage,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    StorageUnavailable,
    UnknownModel,
)

RUNCOMFY_PREFIX = "/v1/"

# status -> (RunComfy numeric code, type)
_RUNCOMFY_CODES = {
    400: (400001, "InvalidRequest"),
    401: (401001, "AuthenticationError"),
    403: (403001, "PermissionDeniedError"),
    404: (404001, "ResourceNotFound"),
    405: (405001, "MethodNotAllowed"),
    409: (409001, "Conflict"),
    410: (410001, "Gone"),
    413: (413001, "PayloadTooLarge"),
    429: (429001, "RateLimitError"),
    500: (500001, "InternalError"),
    503: (503001, "ServiceUnavailable"),
}

log = logging.getLogger(__name__)


def status_for(exc: I2VError, *, runcomfy: bool = False) -> int:
    if isinstance(exc, PayloadTooLarge):
        return 413
    if isinstance(exc, Expired):
        return 410
    if isinstance(exc, RateLimited):
        return 429
    if isinstance(exc, InsufficientStorage):
        # WaveSpeed's envelope carries any HTTP status; RunComfy's documented codes have
        # no 507, so its clients get the retryable 503.
        return 503 if runcomfy else 507
    if isinstance(exc, UnknownModel | NotFound):
        return 404
    if isinstance(exc, InputError):
        return 400
    if isinstance(exc, AuthError):
        return 401
    if isinstance(exc, Forbidden):
        return 403
    if isinstance(exc, Conflict):
        return 409
    if isinstance(exc, StorageUnavailable | DatabaseUnavailable):
        return 503
    return 500


def error_response(
    request: Request, status: int, message: str, *, retry_after_s: float | None = None
) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else {}
    if retry_after_s is not None:
        headers["Retry-After"] = str(max(1, math.ceil(retry_after_s)))
    body: dict[str, Any]
    if is_runcomfy(request):
        code, kind = _RUNCOMFY_CODES.get(status, (status * 1000 + 1, "Error"))
        body = {"request_id": None, "error": {"code": code, "type": kind, "message": message}}
    else:
        body = {"code": status, "message": message, "data": None}
    return JSONResponse(body, status_code=status, headers=headers)


def is_runcomfy(request: Request) -> bool:
    return request.url.path.startswith(RUNCOMFY_PREFIX)


def validation_message(exc: RequestValidationError) -> str:
    """One line per problem: the field, the rule, the value that broke it."""
    parts = []
    for err in exc.errors():
        loc = [str(x) for x in err.get("loc", ()) if x != "body"]
        field = _dotted(loc) or "body"
        kind = err.get("type", "")
        if kind == "json_invalid":
            parts.append(f"body: malformed JSON ({err.get('ctx', {}).get('error', 'invalid')})")
        elif kind == "missing":
            parts.append(f"{field}: is required")
        elif kind == "extra_forbidden":
            parts.append(f"{field}: is not an input of this model (see GET /api/v3/models)")
        elif kind in {"model_attributes_type", "dict_type"} and not loc:
            parts.append("body: must be a JSON object")
        else:
            parts.append(
                f"{field}: {_lower_first(err.get('msg', 'invalid'))}, got {_show(err.get('input'))}"
            )
    return "; ".join(parts)


def install(app: FastAPI) -> None:
    @app.exception_handler(I2VError)
    async def _domain(request: Request, exc: I2VError) -> JSONResponse:
        status = status_for(exc, runcomfy=is_runcomfy(request))
        retry_after = exc.retry_after_s if isinstance(exc, RateLimited) else None
        return error_response(request, status, exc.message, retry_after_s=retry_after)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(request, 400, validation_message(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error_response(request, exc.status_code, body_problem(exc) or str(exc.detail))

    @app.exception_handler(ClientDisconnect)
    async def _gone(request: Request, exc: ClientDisconnect) -> Response:
        # The client hung up while we read its body: nothing went wrong on our side and no
        # one is left to answer, so one line, not the 500 and traceback of a bug.
        log.info("%s %s: the client disconnected mid-request", request.method, request.url.path)
        return Response(status_code=499)  # nginx's "client closed request"; never sent

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        return error_response(request, 500, f"internal error: {type(exc).__name__}")


def body_problem(exc: StarletteHTTPException) -> str | None:
    """What was wrong with a body FastAPI could not parse, when it says only "There was an
    error parsing the body" (the reason is the exception's cause)."""
    cause = exc.__cause__
    if isinstance(cause, UnicodeDecodeError):
        return (
            f"body: is not valid UTF-8 (byte 0x{cause.object[cause.start]:02x} "
            f"at offset {cause.start})"
        )
    if isinstance(cause, RecursionError):
        return "body: JSON nests too deeply"
    return None


def _dotted(loc: list[str]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if part.isdigit() else (f".{part}" if out else part)
    return out


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
