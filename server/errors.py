"""Typed request errors; ``server.rpc`` maps each to the wire error reply with its HTTP status."""

from __future__ import annotations


class RpcError(Exception):
    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(RpcError):
    status = 400


class Forbidden(RpcError):
    status = 403


class NotFound(RpcError):
    status = 404


class Conflict(RpcError):
    """The request contradicts what is stored: a channel sequence taken by another entry, a thing
    to add that exists already, or a removal that would orphan others (the reference's 409)."""

    status = 409


class RequestTimeout(RpcError):
    status = 408


class PayloadTooLarge(RpcError):
    status = 413


class TooManyRequests(RpcError):
    """One client (peer address) holds more than its share of a per-peer limit."""

    status = 429


class Unavailable(RpcError):
    status = 503


class Replayed(Forbidden):
    """The identical signed request was already accepted (replay protection)."""

    def __init__(self) -> None:
        super().__init__("Replayed request refused: this exact signed request was already accepted")
