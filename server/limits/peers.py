"""Who a client is for per-peer limits, and a counter of what all peers and each peer hold."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from server.errors import TooManyRequests, Unavailable


def peer_key(host: str | None) -> str:
    """The address per-peer limits count by.

    An IPv4 address as is (also when it arrives IPv4-mapped on an IPv6 socket); an IPv6 address
    by its /64 network, since one client is usually given a whole /64.
    """
    if not host:
        return "unknown"
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])  # drop an IPv6 zone ("fe80::1%eth0")
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


@dataclass(frozen=True)
class Cap:
    """A limit and the environment variable that sets it; 0 means no limit."""

    limit: int
    setting: str


class PeerCounter:
    """Units (connections, sockets, bytes) held in total and per peer; refuses what would pass a cap.

    Past the total cap ``acquire`` raises ``Unavailable`` (503: the server is busy, retry); past a
    peer's cap it raises ``TooManyRequests`` (429: this client holds its share).
    """

    def __init__(self, what: str, total: Cap, per_peer: Cap) -> None:
        self.what = what
        self.total_cap = total
        self.per_peer_cap = per_peer
        self._total = 0
        self._by_peer: dict[str, int] = {}

    @property
    def total(self) -> int:
        return self._total

    def held_by(self, peer: str) -> int:
        return self._by_peer.get(peer, 0)

    def acquire(self, peer: str, amount: int = 1) -> None:
        held = self._by_peer.get(peer, 0)
        total, per_peer = self.total_cap, self.per_peer_cap
        if total.limit and self._total + amount > total.limit:
            raise Unavailable(f"Server busy: {self.what} would exceed the limit of {total.limit} "
                              f"({total.setting}), retry in a moment")
        if per_peer.limit and held + amount > per_peer.limit:
            raise TooManyRequests(f"Too many {self.what} from {peer}: at most {per_peer.limit} at a time "
                                  f"({per_peer.setting}), retry when some have finished")
        self._total += amount
        self._by_peer[peer] = held + amount

    def release(self, peer: str, amount: int = 1) -> None:
        held = self._by_peer.get(peer, 0) - amount
        if held > 0:
            self._by_peer[peer] = held
        else:
            self._by_peer.pop(peer, None)
        self._total -= amount
