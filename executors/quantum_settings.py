"""The quantum executor's settings (``COLONIES_QUANTUM_*``), read by the executor and, from the same
environment, by its workers. Nothing here imports qiskit.

| variable | meaning | default |
|---|---|---|
| ``COLONIES_QUANTUM_MAX_SHOTS`` | most shots one run may ask for | ``100000`` |
| ``COLONIES_QUANTUM_MAX_QUBITS`` | most qubits a circuit may have on the ideal simulator | ``24`` |
| ``COLONIES_QUANTUM_FAKE_BACKENDS`` | noisy IBM device simulators (a,b) | ``fake_manila,fake_lima`` |
| ``COLONIES_QUANTUM_THREADS`` | threads one simulation may use (0: all cores) | ``1`` |
| ``COLONIES_QUANTUM_IBM_TOKEN`` | an IBM Quantum API token: offer the account's real backends | none |
| ``COLONIES_QUANTUM_IBM_CHANNEL`` | the IBM service's channel | ``ibm_quantum_platform`` |
| ``COLONIES_QUANTUM_IBM_INSTANCE`` | the IBM service's instance (CRN) | none |
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from executors.config import ConfigError

IDEAL = "aer_simulator"  # the ideal (noiseless) simulator, always offered
IBM_PREFIX = "ibm_"  # real IBM Quantum backends are named ibm_<device>
_PREFIX = "COLONIES_QUANTUM_"


@dataclass(frozen=True)
class QuantumSettings:
    max_shots: int = 100_000
    max_qubits: int = 24
    fake_backends: tuple[str, ...] = ("fake_manila", "fake_lima")
    threads: int = 1
    ibm_token: str = ""
    ibm_channel: str = "ibm_quantum_platform"
    ibm_instance: str = ""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> QuantumSettings:
        """The settings in ``environ`` (default ``os.environ``); ConfigError naming a bad one."""
        env = os.environ if environ is None else environ
        get = lambda name: env.get(_PREFIX + name, "").strip()  # noqa: E731
        settings = cls()
        values: dict[str, object] = {}
        for name, key in (("MAX_SHOTS", "max_shots"), ("MAX_QUBITS", "max_qubits"), ("THREADS", "threads")):
            if get(name):
                values[key] = _integer(get(name), _PREFIX + name)
        if get("FAKE_BACKENDS"):
            values["fake_backends"] = tuple(n.strip() for n in get("FAKE_BACKENDS").split(",") if n.strip())
        for name in ("IBM_TOKEN", "IBM_CHANNEL", "IBM_INSTANCE"):
            if get(name):
                values[name.lower()] = get(name)
        return settings.replace(**values).checked()

    def checked(self) -> QuantumSettings:
        if self.max_shots < 1:
            raise ConfigError(f"{_PREFIX}MAX_SHOTS must be at least 1, not {self.max_shots}")
        if self.max_qubits < 1:
            raise ConfigError(f"{_PREFIX}MAX_QUBITS must be at least 1, not {self.max_qubits}")
        if self.threads < 0:
            raise ConfigError(f"{_PREFIX}THREADS must not be negative, not {self.threads}")
        for name in self.fake_backends:
            if not name.startswith("fake_"):
                raise ConfigError(f"{_PREFIX}FAKE_BACKENDS: {name!r} is not the name of a fake backend "
                                  "(fake_<device>, e.g. fake_manila)")
        return self

    def to_env(self) -> dict[str, str]:
        """These settings as the ``COLONIES_QUANTUM_*`` variables :meth:`from_env` reads back."""
        values = {"MAX_SHOTS": str(self.max_shots), "MAX_QUBITS": str(self.max_qubits),
                  "FAKE_BACKENDS": ",".join(self.fake_backends), "THREADS": str(self.threads),
                  "IBM_TOKEN": self.ibm_token, "IBM_CHANNEL": self.ibm_channel,
                  "IBM_INSTANCE": self.ibm_instance}
        return {_PREFIX + name: value for name, value in values.items()}

    def replace(self, **changes: object) -> QuantumSettings:
        return type(self)(**{**self.__dict__, **changes})


def _integer(text: str, name: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, not {text!r}") from None
