"""Assertion helpers shared by the integration tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from pycolonies.errors import ColoniesServerError


def refused(call: Callable[[], Any], status: int, fragment: str = "") -> ColoniesServerError:
    """Run ``call``, which the server must refuse with ``status`` and a message containing ``fragment``."""
    with pytest.raises(ColoniesServerError) as info:
        call()
    assert info.value.status == status, info.value
    assert fragment in info.value.message
    return info.value
