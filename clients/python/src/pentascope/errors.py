"""Exceptions raised by the pentascope client.

Every error the service answers with is a :class:`PentascopeError` carrying the
HTTP ``status`` and the server's ``error`` message; the subclasses name the
statuses. :class:`NotFound` is also a :class:`LookupError` and
:class:`BadRequest` a :class:`ValueError`, as the Celery task raises them.
"""

from __future__ import annotations


class PentascopeError(Exception):
    """An error from the pentascope service (or a failed job)."""

    def __init__(self, error: str, status: int | None = None) -> None:
        super().__init__(f"{status}: {error}" if status is not None else error)
        self.status = status
        self.error = error


class BadRequest(PentascopeError, ValueError):
    """400: a malformed request (out-of-range index, invalid components, ...)."""


class Unauthorized(PentascopeError):
    """401: missing or invalid token."""


class Forbidden(PentascopeError):
    """403: the token may not do this."""


class NotFound(PentascopeError, LookupError):
    """404: unknown image or job."""


class PayloadTooLarge(PentascopeError):
    """413: the image or upload is over the server's limits."""


class UnsupportedMediaType(PentascopeError):
    """415: not a TIFF, or an unsupported codec or sample type."""


class Unprocessable(PentascopeError):
    """422: a broken TIFF (truncated, looping IFDs, ...)."""


class ServiceUnavailable(PentascopeError):
    """503: a dependency of the service (database, storage, broker) is down."""


class JobFailed(PentascopeError):
    """A background job ended in FAILURE; ``error`` is the job's error."""

    def __init__(self, error: str, job_id: str) -> None:
        super().__init__(error)
        self.job_id = job_id


BY_STATUS: dict[int, type[PentascopeError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    413: PayloadTooLarge,
    415: UnsupportedMediaType,
    422: Unprocessable,
    503: ServiceUnavailable,
}


def error_for(status: int, error: str) -> PentascopeError:
    """The exception for an error answer with ``status`` and message ``error``."""
    return BY_STATUS.get(status, PentascopeError)(error, status)
