"""Container images for the tests, built locally without a registry (../shared/systems.md):
busybox from the host's busybox-static, and a Python one from the host's interpreter.

:func:`require_podman` skips a test when podman is absent or unusable, except in CI (``CI=true``),
where it fails: CI installs and configures podman itself (``.ci/run``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

BUSYBOX = "localhost/colonies-test/busybox:1"
PYTHON = "localhost/colonies-test/python:1"
_TIMEOUT = 120


def require_podman() -> None:
    """Return if podman works here; else skip (fail in CI) with the reason."""
    reason = ""
    if shutil.which("podman") is None:
        reason = "podman is not installed (apt-get install podman runc busybox-static; see .ci/run)"
    else:
        done = subprocess.run(["podman", "info"], capture_output=True, text=True, timeout=_TIMEOUT)
        if done.returncode != 0:
            reason = f"'podman info' failed: {done.stderr.strip().splitlines()[-1:]}"
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason + " (in CI, with CI=true, this fails)")


def _import(root: Path, image: str, *changes: str) -> str:
    """``tar -C root -c . | podman import``: the directory becomes ``image``."""
    tar = subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)
    command = ["podman", "import", "-q"]
    for change in ("ENV PATH=/usr/local/bin:/usr/bin:/bin", *changes):
        command += ["--change", change]
    done = subprocess.run([*command, "-", image], stdin=tar.stdout, capture_output=True, text=True,
                          timeout=_TIMEOUT)
    tar.wait(_TIMEOUT)
    assert done.returncode == 0 and tar.returncode == 0, done.stderr
    return image


def _busybox_root(root: Path) -> None:
    busybox = shutil.which("busybox") or "/bin/busybox"
    assert os.path.exists(busybox), "busybox-static is not installed"
    (root / "bin").mkdir(parents=True)
    (root / "tmp").mkdir(mode=0o1777)
    shutil.copy(busybox, root / "bin" / "busybox")
    applets = subprocess.run([busybox, "--list"], capture_output=True, text=True, check=True).stdout.split()
    for applet in applets:
        if applet != "busybox":
            (root / "bin" / applet).symlink_to("busybox")


def build_busybox() -> str:
    """The busybox image (2 MB, ~1 s); built once per machine and kept."""
    if _exists(BUSYBOX):
        return BUSYBOX
    with tempfile.TemporaryDirectory() as directory:
        _busybox_root(Path(directory))
        return _import(Path(directory), BUSYBOX)


def build_python() -> str:
    """busybox plus this machine's python3 with its standard library and the libraries it links
    (~70 MB, a few seconds); built once per machine and kept."""
    if _exists(PYTHON):
        return PYTHON
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        _busybox_root(root)
        python = Path(_host_python()).resolve()
        where = "import sysconfig; print(sysconfig.get_paths()['stdlib'])"
        stdlib = Path(subprocess.run([str(python), "-c", where], capture_output=True, text=True,
                                     check=True).stdout.strip())
        binaries = [python, *(stdlib / "lib-dynload").glob("*.so")]
        for path in [python, stdlib, *_linked_libraries(binaries)]:
            _copy(path, root)
        (root / "usr" / "bin").mkdir(parents=True, exist_ok=True)
        if python != Path("/usr/bin/python3"):
            (root / "usr" / "bin" / "python3").symlink_to(python)
        return _import(root, PYTHON)


def _host_python() -> str:
    """The system's python3.11 (Debian's), else this interpreter."""
    return "/usr/bin/python3.11" if os.path.exists("/usr/bin/python3.11") else sys.executable


def _linked_libraries(binaries: list[Path]) -> set[Path]:
    found: set[Path] = set()
    for binary in binaries:
        out = subprocess.run(["ldd", str(binary)], capture_output=True, text=True).stdout
        for line in out.splitlines():
            parts = line.split()
            for part in parts:
                if part.startswith("/"):
                    found.add(Path(part))
    return found


def _copy(path: Path, root: Path) -> None:
    target = root / path.relative_to("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    if path.is_dir():
        shutil.copytree(path, target, symlinks=True, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("__pycache__", "test", "tests", "idlelib", "tkinter"))
    else:
        shutil.copy2(path.resolve(), target)


def _exists(image: str) -> bool:
    return subprocess.run(["podman", "image", "exists", image], timeout=_TIMEOUT).returncode == 0


def containers(label: str, value: str) -> list[str]:
    """Ids of the containers (running or not) labelled ``label=value``."""
    out = subprocess.run(["podman", "ps", "-a", "-q", "--filter", f"label={label}={value}"],
                         capture_output=True, text=True, timeout=_TIMEOUT).stdout
    return out.split()
