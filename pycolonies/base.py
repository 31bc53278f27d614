"""What the sync and async HTTP clients share: the endpoint, options and error wording."""

from __future__ import annotations

from pycolonies import pubsub
from pycolonies.api import ColoniesApi
from pycolonies.errors import ColoniesConnectionError
from pycolonies.retrying import DEFAULT_RETRY_FOR_S

API_PATH = "/api"


class HttpClientBase(ColoniesApi):
    """Endpoint and options of a client talking to ``http[s]://host:port/api`` (and, for
    ``wait``, to ``ws[s]://host:port/pubsub``).

    ``native_crypto`` is accepted for compatibility with the reference SDK and has no effect
    (signing always uses libsecp256k1 through coincurve). ``timeout`` (seconds, default none)
    bounds each request; an ``assign`` call adds its long-poll timeout on top. With
    ``use_msgpack=True`` the envelopes travel as msgpack instead of JSON.

    A call the server could not answer (503 while its database fails over or a replica shuts
    down, a connection cut by a load balancer) is sent again, unchanged, for up to ``retry_for``
    seconds (default 30; 0 never retries); see :mod:`pycolonies.retrying`.
    """

    def __init__(
        self,
        host: str,
        port: int,
        tls: bool = False,
        native_crypto: bool = False,
        *,
        use_msgpack: bool = False,
        timeout: float | None = None,
        retry_for: float = DEFAULT_RETRY_FOR_S,
    ) -> None:
        self.host = host
        self.port = int(port)
        self.tls = bool(tls)
        self.native_crypto = native_crypto
        self.use_msgpack = use_msgpack
        self.timeout = timeout
        self.retry_for = float(retry_for)
        if not self.retry_for >= 0:  # also refuses NaN
            raise ValueError(f"retry_for must be 0 (no retries) or more seconds, got {retry_for!r}")
        scheme = "https" if self.tls else "http"
        self.url = f"{scheme}://{host}:{self.port}{API_PATH}"
        self.pubsub_url = pubsub.url(host, self.port, self.tls)
        self._init_transport()

    def _init_transport(self) -> None:
        """Set up the transport's own state (connections, session); called by ``__init__``."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"

    @property
    def _where(self) -> str:
        return f"{self.host}:{self.port}"

    def _unreachable(self, exc: BaseException, *, cut: bool = False) -> ColoniesConnectionError:
        """The error for a failed transport; ``cut``: the connection was opened and then lost
        (the call may be sent again), rather than refused."""
        reason = str(exc) or type(exc).__name__
        return ColoniesConnectionError(f"Connection to Colonies server at {self._where} failed: {reason}",
                                       retryable=cut)
