"""Exceptions raised by quiver: one class per error code of the C++ library (``Result`` errors) and
per error code of the HTTP API (``quiver.Client``).

Every exception is a :class:`quiver.Error` with ``code`` (a string such as ``"not_found"``) and
``message``. Each class also derives from the closest built-in exception, so ``except ValueError``
catches bad arguments and ``except KeyError`` a missing id::

    try:
        coll.get("missing")
    except quiver.NotFoundError as e:
        print(e.code, e.message)

HTTP errors (:class:`HttpError` subclasses) also carry ``status`` (the HTTP status code) and
``request_id`` (the server's ``X-Request-Id``).
"""
from __future__ import annotations


class Error(Exception):
    """Base of every quiver error. ``code``: the error code string; ``message``: what failed."""

    code = "unknown"

    def __init__(self, message: str, code: str | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class InvalidArgumentError(Error, ValueError):
    """Bad input from the caller: dimension mismatch, NaN, malformed record, unknown field."""
    code = "invalid_argument"


class NotFoundError(Error, KeyError):
    """A named file, id, field or collection does not exist."""
    code = "not_found"

    def __str__(self) -> str:  # KeyError would quote the message
        return Error.__str__(self)


class AlreadyExistsError(Error):
    """Creating something that is there already (HTTP 409 ``conflict``)."""
    code = "already_exists"


class OutOfRangeError(Error, IndexError):
    """An index or size beyond the valid range."""
    code = "out_of_range"


class FailedPreconditionError(Error, RuntimeError):
    """The system is not in a state for this call (wrong format version, read-only collection, ...)."""
    code = "failed_precondition"


class ResourceExhaustedError(Error, RuntimeError):
    """Memory, disk or a configured limit (HTTP 507 ``insufficient_storage``, 413, 429)."""
    code = "resource_exhausted"


class DataLossError(Error, RuntimeError):
    """Corrupt or truncated bytes: checksum, magic or size mismatch."""
    code = "data_loss"


class IoError(Error, OSError):
    """The operating system refused (open, read, write, fsync, mmap)."""
    code = "io_error"

    def __str__(self) -> str:
        return Error.__str__(self)


class UnimplementedError(Error, NotImplementedError):
    """A combination this build does not support."""
    code = "unimplemented"


class UnavailableError(Error, RuntimeError):
    """Transient; may succeed if retried (HTTP 503, a collection that failed to open)."""
    code = "unavailable"


class InternalError(Error, RuntimeError):
    """An invariant failed inside a dependency (HTTP 500 ``internal``)."""
    code = "internal"


# The C++ ErrorCode enumerators, in declaration order (include/quiver/core/result.h).
_BY_NUMBER = [
    InvalidArgumentError, NotFoundError, AlreadyExistsError, OutOfRangeError, FailedPreconditionError,
    ResourceExhaustedError, DataLossError, IoError, UnimplementedError, UnavailableError, InternalError,
]


def _from_code(number: int, message: str) -> Error:
    """Called by the extension module: the exception for C++ ErrorCode ``number``."""
    cls = _BY_NUMBER[number] if 0 <= number < len(_BY_NUMBER) else Error
    return cls(message)


# ----------------------------------------------------------------------------------------------------
# HTTP errors (quiver.Client): the API's error codes (docs/openapi.yaml, schema Error).

class HttpError(Error):
    """An error response of the HTTP API. ``status``: HTTP status; ``request_id``: X-Request-Id."""

    def __init__(self, message: str, code: str | None = None, status: int = 0, request_id: str | None = None):
        super().__init__(message, code)
        self.status = status
        self.request_id = request_id

    def __str__(self) -> str:
        return f"{self.status} {self.code}: {self.message}"


class BadRequestError(HttpError, InvalidArgumentError):
    """400 ``invalid_argument``: a malformed body, an unknown key, a bad parameter."""
    code = "invalid_argument"


class UnprocessableError(BadRequestError):
    """422 ``unprocessable``: a well-formed document the schema refuses."""
    code = "unprocessable"


class UnauthorizedError(HttpError):
    """401 ``unauthorized``: missing or wrong API key."""
    code = "unauthorized"


class ForbiddenError(HttpError):
    """403 ``forbidden``: a read-only key on a write route, a Host or Origin not allowed."""
    code = "forbidden"


class HttpNotFoundError(HttpError, NotFoundError):
    """404 ``not_found``: no such collection or document."""
    code = "not_found"


class MethodNotAllowedError(HttpError):
    """405 ``method_not_allowed``."""
    code = "method_not_allowed"


class ConflictError(HttpError, AlreadyExistsError):
    """409 ``conflict``: the collection exists already."""
    code = "conflict"


class PayloadTooLargeError(HttpError, ResourceExhaustedError):
    """413 ``payload_too_large``: body, batch or search-batch limits."""
    code = "payload_too_large"


class UnsupportedMediaTypeError(HttpError):
    """415 ``unsupported_media_type``."""
    code = "unsupported_media_type"


class RateLimitedError(HttpError, ResourceExhaustedError):
    """429 ``rate_limited``."""
    code = "rate_limited"


class ServerError(HttpError, InternalError):
    """500 ``internal``."""
    code = "internal"


class ServerDataLossError(HttpError, DataLossError):
    """500 ``data_loss``: the server found corrupt files."""
    code = "data_loss"


class ServiceUnavailableError(HttpError, UnavailableError):
    """503 ``unavailable``: the collection failed to open, or the server is shutting down."""
    code = "unavailable"


class InsufficientStorageError(HttpError, ResourceExhaustedError):
    """507 ``insufficient_storage``: the server's disk is full."""
    code = "insufficient_storage"


_HTTP_BY_CODE = {cls.code: cls for cls in [
    BadRequestError, UnprocessableError, UnauthorizedError, ForbiddenError, HttpNotFoundError,
    MethodNotAllowedError, ConflictError, PayloadTooLargeError, UnsupportedMediaTypeError, RateLimitedError,
    ServerError, ServerDataLossError, ServiceUnavailableError, InsufficientStorageError,
]}


def _from_http(status: int, code: str, message: str, request_id: str | None) -> HttpError:
    cls = _HTTP_BY_CODE.get(code, HttpError)
    return cls(message, code=code, status=status, request_id=request_id)


__all__ = [name for name, value in globals().items()
           if isinstance(value, type) and issubclass(value, Error)]
