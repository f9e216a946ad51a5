"""Fixtures of the odenet tests."""
import pytest

from odenet import native


@pytest.fixture(scope="session")
def built():
    """The native extension, built (or loaded) once; a visible skip naming the cause if no toolchain."""
    try:
        return native.native_module()
    except RuntimeError as exc:
        pytest.skip(f"the native loop cannot be built here: {exc}")
