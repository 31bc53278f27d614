"""The executor package's import order: the job types and the work loop sit below the base."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize(("module", "below"), [
    ("executors.job", ("executors.base", "executors.worker")),
    ("executors.worker", ("executors.base",)),
])
def test_a_lower_module_imports_without_the_ones_above_it(module: str, below: tuple[str, ...]) -> None:
    code = (f"import sys, {module}\n"
            f"print(' '.join(sorted(m for m in {below!r} if m in sys.modules)))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "", f"importing {module} imported {done.stdout.strip()}"
