"""A tiny tmpfs for the disk-full scenario: a filesystem small enough to
fill in milliseconds, without touching the machine's real disk."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


@contextmanager
def tmpfs(path: Path, size: str = "16m") -> Iterator[Path]:
    """Mount a tmpfs of ``size`` at ``path`` for the block; skip the test
    (with the reason) where that is not possible."""
    if shutil.which("mount") is None or shutil.which("umount") is None:
        pytest.skip("no mount/umount binary: the disk-full scenario needs a small tmpfs to fill")
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root: the disk-full scenario needs a small filesystem to fill")
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(path)],
        capture_output=True, text=True, timeout=30,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.strip() or mounted.returncode}): "
                    "the disk-full scenario needs a small filesystem to fill")
    try:
        yield path
    finally:
        # Whatever still holds a file there (it should be dead by now) must not
        # leave the mount behind: fall back to a lazy unmount.
        if subprocess.run(["umount", str(path)], capture_output=True, timeout=30).returncode != 0:
            subprocess.run(["umount", "-l", str(path)], capture_output=True, timeout=30)
