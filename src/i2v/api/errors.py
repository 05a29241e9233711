"""Domain errors -> HTTP, once, in each dialect's error envelope.

WaveSpeed: `{"code": <http status>, "message": ..., "data": null}`.
RunComfy (whose error body is undocumented; its numeric codes are):
`{"request_id": null, "error": {"code": 404001, "type": "ResourceNotFound", "message": ...}}`.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from i2v.domain.errors import (
    AuthError,
    Conflict,
    I2VError,
    InputError,
    NotFound,
    PayloadTooLarge,
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
    413: (413001, "PayloadTooLarge"),
    500: (500001, "InternalError"),
    503: (503001, "ServiceUnavailable"),
}


def status_for(exc: I2VError) -> int:
    if isinstance(exc, PayloadTooLarge):
        return 413
    if isinstance(exc, UnknownModel | NotFound):
        return 404
    if isinstance(exc, InputError):
        return 400
    if isinstance(exc, AuthError):
        return 401
    if isinstance(exc, Conflict):
        return 409
    if isinstance(exc, StorageUnavailable):
        return 503
    return 500


def error_response(request: Request, status: int, message: str) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    body: dict[str, Any]
    if request.url.path.startswith(RUNCOMFY_PREFIX):
        code, kind = _RUNCOMFY_CODES.get(status, (status * 1000 + 1, "Error"))
        body = {"request_id": None, "error": {"code": code, "type": kind, "message": message}}
    else:
        body = {"code": status, "message": message, "data": None}
    return JSONResponse(body, status_code=status, headers=headers)


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
        return error_response(request, status_for(exc), exc.message)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(request, 400, validation_message(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error_response(request, exc.status_code, str(exc.detail))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        return error_response(request, 500, f"internal error: {type(exc).__name__}")


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
