"""Exceptions raised by the pycolonies clients.

Hierarchy::

    ColoniesError
    └── ColoniesConnectionError      transport failures (and, for compatibility, server errors)
        ├── ColoniesServerError      the server answered with an error envelope
        │   ├── BadRequestError      400
        │   ├── AccessDeniedError    403
        │   │   └── AlreadyApplied   a retried request whose first attempt took effect
        │   └── NotFoundError        404
        └── ColoniesTimeout          ``wait`` ran out of time before the process finished

The reference SDK raises ``ColoniesConnectionError`` for every failed call, so code written for it
(``except ColoniesConnectionError`` around ``assign``) keeps working, while new code can catch the
precise subclass.
"""

from __future__ import annotations


class ColoniesError(Exception):
    """Base of every pycolonies error; ``str(e)`` is the message."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, status={self.status!r})"


class ColoniesConnectionError(ColoniesError):
    """The server could not be reached, or replied with something that is not a reply envelope.

    ``retryable`` is true when the request may be sent again as it is: the connection was cut
    (reset, or closed before the reply), not refused or never opened.
    """

    def __init__(self, message: str, status: int | None = None, *, retryable: bool = False) -> None:
        super().__init__(message, status)
        self.retryable = retryable


class ColoniesServerError(ColoniesConnectionError):
    """The server replied with an error envelope; ``status`` and ``message`` are the server's."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message, status)


class BadRequestError(ColoniesServerError):
    """HTTP 400: malformed or invalid request (validation failure, already exists, ...)."""


class AccessDeniedError(ColoniesServerError):
    """HTTP 403: bad signature or the signer is not allowed to do this."""


class AlreadyApplied(AccessDeniedError):
    """A call was sent again after its reply was lost (a cut connection, a 503), and the server
    refused the copy as a replay: the first attempt took effect, but what it answered is unknown.
    A close, a fail or a removal is done; a submit created its process (find it by its spec)."""


class NotFoundError(ColoniesServerError):
    """HTTP 404: the object does not exist, or ``assign`` found no process before its timeout."""


class ColoniesTimeout(ColoniesConnectionError):
    """``wait(process, timeout, prvkey)`` ended before the process reached a final state."""


_BY_STATUS: dict[int, type[ColoniesServerError]] = {
    400: BadRequestError,
    403: AccessDeniedError,
    404: NotFoundError,
}


def server_error(status: int | None, message: str) -> ColoniesServerError:
    """The exception for a server error reply with this status."""
    cls = _BY_STATUS.get(status, ColoniesServerError) if status is not None else ColoniesServerError
    return cls(message, status)


def unsupported(exc: BaseException) -> bool:
    """The server does not know the message type sent (a reference server given one of our
    extensions answers 403 ``invalid rpcMsg.PayloadType: <type>``)."""
    return isinstance(exc, AccessDeniedError) and "invalid rpcMsg.PayloadType" in exc.message
