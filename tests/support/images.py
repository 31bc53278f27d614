"""Container images for the tests, built locally without a registry (../shared/systems.md):
busybox from the host's busybox-static, a Python one from the host's interpreter (and one that
can make venvs, a base for the project's Containerfile), and a PostgreSQL 15 one from the host's
Debian PostgreSQL 15 with an entrypoint that mimics the official image's.

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

from tests.support.pg_cluster import HOME as POSTGRES_HOME

BUSYBOX = "localhost/colonies-test/busybox:1"
PYTHON = "localhost/colonies-test/python:1"
PYTHON_BASE = "localhost/colonies-test/python-base:1"
POSTGRES = "localhost/colonies-test/postgres:15"
POSTGRES_UID = 999
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
    (root / "tmp").mkdir()
    (root / "tmp").chmod(0o1777)  # mkdir's mode is cut by the umask
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
        _python_root(Path(directory))
        return _import(Path(directory), PYTHON)


def build_python_base() -> str:
    """The Python image plus what ``python3 -m venv`` needs (Debian's pip and setuptools wheels),
    the C and C++ runtime libraries that manylinux wheels may link, the CA bundle and an
    /etc/passwd: a stand-in for python:3.11-slim as the Containerfile's BASE_IMAGE. Built
    once per machine and kept."""
    if _exists(PYTHON_BASE):
        return PYTHON_BASE
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        _python_root(root)
        for path in [Path("/usr/share/python-wheels"), *_runtime_libraries()]:
            _copy(path, root)
        _copy(Path("/etc/ssl/certs/ca-certificates.crt"), root)  # Debian's pip reads this bundle
        _write_accounts(root, [])
        return _import(root, PYTHON_BASE)


def _python_root(root: Path) -> None:
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


# The shared libraries a slim Debian base has and manylinux wheels may link (glibc's whole set,
# libgcc_s, libstdc++, zlib): ldd of the interpreter names only some of them.
RUNTIME_PACKAGES = ("libc6", "libgcc-s1", "libstdc++6", "zlib1g")


def _runtime_libraries() -> list[Path]:
    listed = subprocess.run(["dpkg", "-L", *RUNTIME_PACKAGES], capture_output=True, text=True).stdout
    paths = [Path(line) for line in listed.splitlines() if ".so" in line and line.startswith("/")]
    return [path for path in paths if "gconv" not in path.parts and path.is_file()]


def _write_accounts(root: Path, users: list[tuple[str, int]]) -> None:
    """/etc/passwd and /etc/group with root, nobody and ``users`` (name, uid = gid)."""
    etc = root / "etc"
    etc.mkdir(exist_ok=True)
    passwd = ["root:x:0:0:root:/root:/bin/sh", "nobody:x:65534:65534:nobody:/nonexistent:/bin/false"]
    group = ["root:x:0:", "nogroup:x:65534:"]
    for name, uid in users:
        passwd.append(f"{name}:x:{uid}:{uid}:{name}:/var/lib/{name}:/bin/sh")
        group.append(f"{name}:x:{uid}:")
    (etc / "passwd").write_text("\n".join(passwd) + "\n")
    (etc / "group").write_text("\n".join(group) + "\n")
    (root / "root").mkdir(mode=0o700, exist_ok=True)


def build_postgres() -> str:
    """busybox plus this machine's Debian PostgreSQL 15 (binaries, libraries, share files, time
    zones and what ``ldd`` names), a non-root ``postgres`` user and an entrypoint with the official
    image's environment (postgres_image/entrypoint.sh); ~60 MB, a few seconds. Built once per
    machine and kept."""
    if _exists(POSTGRES):
        return POSTGRES
    assert (POSTGRES_HOME / "bin" / "postgres").exists(), \
        "PostgreSQL 15 is not installed (apt-get install postgresql-15)"
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        _busybox_root(root)
        binaries = [p for p in (POSTGRES_HOME / "bin").iterdir() if p.is_file()]
        libraries = [p for p in (POSTGRES_HOME / "lib").rglob("*.so") if not p.name.startswith("llvmjit")]
        for path in [*binaries, *libraries, *_linked_libraries([*binaries, *libraries]),
                     Path("/usr/share/postgresql/15"), Path("/usr/share/zoneinfo")]:
            _copy(path, root)
        _write_accounts(root, [("postgres", POSTGRES_UID)])
        for owned in ("var/lib/postgresql", "var/run/postgresql"):
            (root / owned).mkdir(parents=True)
            os.chown(root / owned, POSTGRES_UID, POSTGRES_UID)
        entrypoint = root / "usr" / "local" / "bin" / "docker-entrypoint.sh"
        entrypoint.parent.mkdir(parents=True)
        shutil.copy(Path(__file__).parent / "postgres_image" / "entrypoint.sh", entrypoint)
        entrypoint.chmod(0o755)
        return _import(root, POSTGRES, f"ENV PATH=/usr/local/bin:{POSTGRES_HOME}/bin:/usr/bin:/bin",
                       "ENV PGDATA=/var/lib/postgresql/data", "EXPOSE 5432", "STOPSIGNAL SIGINT",
                       'ENTRYPOINT ["docker-entrypoint.sh"]', 'CMD ["postgres"]')


def build_image(context: Path, image: str, base: str, *, containerfile: str = "Containerfile",
                timeout: float = 600) -> str:
    """``podman build`` of ``context`` as ``image`` with ``--build-arg BASE_IMAGE=base`` and the
    host network (so pip can download). No intermediate images are kept (``--layers=false``), so
    removing ``image`` leaves nothing behind, even after a failed build."""
    command = ["podman", "build", "-q", "--layers=false", "--network", "host",
               "--build-arg", f"BASE_IMAGE={base}", "-f", str(context / containerfile),
               "-t", image, str(context)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"podman build failed:\n{done.stdout}\n{done.stderr}"
    return image


def remove_image(image: str) -> None:
    subprocess.run(["podman", "rmi", "-f", "-i", image], capture_output=True, timeout=_TIMEOUT)


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
