"""``python -m segmentation`` tells glibc to give large buffers their own mappings (see ``__main__``)."""

from __future__ import annotations

import platform

import pytest

from segmentation.__main__ import return_large_buffers_to_the_system

pytestmark = pytest.mark.unit


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="a glibc setting; elsewhere it is a no-op")
def test_glibc_accepts_the_mmap_threshold() -> None:
    assert return_large_buffers_to_the_system() is True
