"""The backends a quantum executor offers, and finding one by name. Runs where qiskit is imported:
in the quantum executor's workers, never in the executor itself.

* ``aer_simulator``: the ideal (noiseless) Aer simulator, always (up to ``COLONIES_QUANTUM_MAX_QUBITS``);
* ``fake_<device>``: Aer with the noise model and coupling map of an IBM device, from
  qiskit-ibm-runtime's fake backends (``COLONIES_QUANTUM_FAKE_BACKENDS``);
* ``ibm_<device>``: the real IBM Quantum backends of the account, when ``COLONIES_QUANTUM_IBM_TOKEN``
  is set.

``python -m executors.quantum_backends`` prints the list as JSON (what the executor advertises).
"""

from __future__ import annotations

import json
import sys
import warnings
from dataclasses import asdict, dataclass
from typing import Any

from executors.python_worker import Refused
from executors.quantum_settings import IBM_PREFIX, IDEAL, QuantumSettings

IDEAL_KIND = "ideal simulator"
NOISY_KIND = "noisy simulator"
IBM_KIND = "IBM Quantum"


@dataclass(frozen=True)
class BackendInfo:
    name: str
    qubits: int
    kind: str  # IDEAL_KIND, NOISY_KIND or IBM_KIND
    device: str = ""  # the IBM device a noisy simulator imitates

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class IbmUnreachable(Refused):
    """The IBM Quantum service is configured but cannot be reached (or refuses the account)."""


def list_backends(settings: QuantumSettings, with_ibm: bool = True) -> tuple[list[BackendInfo], str]:
    """The backends offered, and why the IBM ones are missing ("" when they are not)."""
    offered = [BackendInfo(IDEAL, settings.max_qubits, IDEAL_KIND)]
    for name in settings.fake_backends:
        backend = fake_backend(name)
        offered.append(BackendInfo(name, backend.num_qubits, NOISY_KIND, device=name.removeprefix("fake_")))
    problem = ""
    if settings.ibm_token and with_ibm:
        try:
            offered += [BackendInfo(b.name, b.num_qubits, IBM_KIND) for b in ibm_service(settings).backends()]
        except IbmUnreachable as exc:
            problem = str(exc)
    return offered, problem


def fake_backend(name: str) -> Any:
    """qiskit-ibm-runtime's fake backend ``name`` (Refused naming the field if there is none)."""
    from qiskit_ibm_runtime.fake_provider import FakeProviderForBackendV2

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "properties are not intended to represent typical ..."
        try:
            return FakeProviderForBackendV2().backend(name)
        except Exception:
            raise Refused(f"backend: qiskit-ibm-runtime has no fake backend {name!r}") from None


def simulator(name: str, settings: QuantumSettings) -> tuple[Any, int]:
    """The Aer simulator for backend ``name`` and the most qubits a circuit may have on it."""
    from qiskit_aer import AerSimulator

    options = {"max_parallel_threads": settings.threads}
    if name == IDEAL:
        return AerSimulator(**options), settings.max_qubits
    if name in settings.fake_backends:
        device = fake_backend(name)
        return AerSimulator.from_backend(device, **options), device.num_qubits
    raise Refused(unknown_backend(name, settings))


def unknown_backend(name: str, settings: QuantumSettings) -> str:
    offered = ", ".join([IDEAL, *settings.fake_backends])
    hint = ""
    if name.startswith(IBM_PREFIX) and not settings.ibm_token:
        hint = " (real IBM Quantum backends need COLONIES_QUANTUM_IBM_TOKEN on the executor)"
    return f"backend: unknown backend {name!r}; this executor offers {offered}{hint}"


def ibm_service(settings: QuantumSettings) -> Any:
    """The IBM Quantum service of the configured account; IbmUnreachable with a one-line reason."""
    from qiskit_ibm_runtime import QiskitRuntimeService

    options = {"channel": settings.ibm_channel, "token": settings.ibm_token}
    if settings.ibm_instance:
        options["instance"] = settings.ibm_instance
    try:
        return QiskitRuntimeService(**options)
    except Exception as exc:
        raise IbmUnreachable(ibm_problem(exc, settings)) from None


def ibm_backend(name: str, settings: QuantumSettings) -> Any:
    """The real IBM backend ``name`` (IbmUnreachable, or Refused when the account has no such one)."""
    service = ibm_service(settings)
    try:
        return service.backend(name)
    except Exception as exc:
        network = _network_cause(exc)
        if network is not None:
            raise IbmUnreachable(ibm_problem(exc, settings)) from None
        raise Refused(f"backend: the IBM Quantum account has no backend {name!r} ({exc})") from None


def ibm_problem(exc: BaseException, settings: QuantumSettings) -> str:
    """One line for a failure of the IBM service: a network error when one is in the chain (the
    service wraps them in unhelpful errors, an AttributeError among them), else what it said."""
    network = _network_cause(exc)
    where = f"the IBM Quantum service (channel {settings.ibm_channel})"
    if network is not None or isinstance(exc, AttributeError):
        cause = network if network is not None else exc
        return f"network error: {where} cannot be reached: {type(cause).__name__}: {_first_line(cause)}"
    return f"{where} refused the account: {type(exc).__name__}: {_first_line(exc)}"


def _network_cause(exc: BaseException) -> BaseException | None:
    """The network error in ``exc``'s chain of causes, if any."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        module = type(current).__module__
        if isinstance(current, OSError | TimeoutError) or module.startswith(("requests", "urllib3")):
            return current
        current = current.__cause__ or current.__context__
    return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else ""


def main() -> None:
    """Print the offered backends as JSON: ``{"backends": [...], "ibm_problem": str}``."""
    try:
        offered, problem = list_backends(QuantumSettings.from_env())
    except Exception as exc:
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}))
        sys.exit(1)
    print(json.dumps({"backends": [b.to_dict() for b in offered], "ibm_problem": problem}))


if __name__ == "__main__":
    main()
