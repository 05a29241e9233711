"""Every error i2v raises on purpose, defined once.

The tree (the API edge maps each branch to one HTTP status, nowhere else):

    I2VError
    ├── InputError                 bad input from a user             -> 400/422
    │   ├── ImageError             image refused by intake           -> 400
    │   ├── FetchError             URL could not be fetched safely   -> 400
    │   │   └── AddressRefused     the SSRF guard refused its host   -> 400
    │   ├── PayloadTooLarge        body or upload over a size cap    -> 413
    │   └── UnknownModel           model path not in the catalog     -> 404
    ├── AuthError                  missing or wrong API key          -> 401
    ├── NotFound                   no such prediction/object for you -> 404
    │   └── Expired                media deleted by retention        -> 410
    ├── Conflict                   the request clashes with a state  -> 409
    ├── RateLimited                a key is over one of its limits   -> 429 + Retry-After
    ├── InsufficientStorage        the media disk is nearly full     -> 507 (RunComfy 503)
    ├── EngineError                an engine failed a render (prediction fails)
    │   └── EngineCrashed          the engine's child process died
    ├── Cancelled                  cooperative cancel reached the engine
    ├── LeaseLost                  a worker's fenced write was refused
    ├── StorageUnavailable         object storage failed; try again  -> 503
    ├── DatabaseUnavailable        the database did not answer       -> 503
    └── ConfigError                a setting the service cannot start with (CLI: exit 2)
"""

from __future__ import annotations

from typing import Any


class I2VError(Exception):
    """Base of every deliberate i2v error. `message` is written for a person."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InputError(I2VError):
    """The caller sent something we refuse. Names the field, the rule and the value."""

    def __init__(self, message: str, *, field: str | None = None, value: Any = None) -> None:
        if field and not message.startswith(f"{field}:"):
            message = f"{field}: {message}"
        super().__init__(message)
        self.field = field
        self.value = value

    def for_field(self, field: str) -> InputError:
        """The same refusal, re-attributed to the request field that carried the value."""
        message = self.message
        if self.field and message.startswith(f"{self.field}:"):
            message = message[len(self.field) + 1 :].lstrip()
        clone = type(self).__new__(type(self))
        InputError.__init__(clone, message, field=field, value=self.value)
        return clone


class ImageError(InputError):
    """An image failed decoding or one of the intake rules."""


class FetchError(InputError):
    """A URL given as input could not be fetched (SSRF guard, size, time, HTTP status)."""


class AddressRefused(FetchError):
    """The URL's host is one the SSRF guard will not connect to (private, metadata, port)."""


class PayloadTooLarge(InputError):
    """A request body or an upload is over its byte cap."""


class UnknownModel(InputError):
    """A model path that the catalog does not serve."""

    def __init__(self, path: str, suggestions: list[str]) -> None:
        hint = f"; did you mean: {', '.join(suggestions)}" if suggestions else ""
        super().__init__(f"unknown model '{path}'{hint}", field="model", value=path)
        self.suggestions = suggestions


class AuthError(I2VError):
    """Missing, malformed or unknown API key."""


class Forbidden(I2VError):
    """A valid key that may not do this (the operator page, for a key that is not admin)."""


class NotFound(I2VError):
    """No such thing, or not yours (both look the same from outside)."""


class Expired(NotFound):
    """A media object retention deleted: it existed, and will not come back."""


class Conflict(I2VError):
    """The request clashes with the current state of a resource."""


class RateLimited(I2VError):
    """A key is over one of its limits (queued, submits per minute). Nothing was wrong with
    the request: the same one succeeds after `retry_after_s` seconds, or once work drains."""

    def __init__(self, message: str, *, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class InsufficientStorage(I2VError):
    """Free space in the media folder is under the configured floor: new work is refused
    at submit rather than failing later while writing its video."""


class EngineError(I2VError):
    """An engine could not render a request; the prediction fails with this message."""


class EngineCrashed(EngineError):
    """The process running an engine died (killed, segfault, out of memory)."""

    def __init__(self, message: str, *, out_of_memory: bool = False) -> None:
        super().__init__(message)
        self.out_of_memory = out_of_memory


class Cancelled(I2VError):
    """Raised inside a render when its prediction was cancelled."""

    def __init__(self, message: str = "cancelled") -> None:
        super().__init__(message)


class LeaseLost(I2VError):
    """A worker's write was fenced off: its lease expired and the job moved on."""


class StorageUnavailable(I2VError):
    """Object storage did not do what was asked (unreachable, refused, erred). Nothing was
    wrong with the request: an API client may retry, a worker's job is retried."""


class DatabaseUnavailable(I2VError):
    """The database did not answer (down, restarting, unreachable, locked past its busy
    timeout). Nothing was wrong with the request: an API client may retry; a worker leaves
    its job to its lease, which returns it to the queue once the database is back."""


class ConfigError(I2VError):
    """A setting the service cannot start with. Raised at start-up, never per request."""
