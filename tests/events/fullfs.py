"""A small real filesystem that a test fills up and frees again: a tmpfs of its own.

Mounting needs root (the tests run as root). Under CI=true a tmpfs that cannot be mounted is
a failure, elsewhere a skip with the reason. The mount is always undone in teardown.
"""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

__all__ = ["SmallFilesystem", "small_filesystem"]

SIZE = "4m"


@dataclass
class SmallFilesystem:
    path: Path

    @property
    def ballast(self) -> Path:
        return self.path / "ballast"

    def fill(self) -> int:
        """Write a file until the filesystem has not one byte left; returns its size."""
        fd = os.open(self.ballast, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            for chunk in (1 << 16, 1 << 12, 1 << 9, 1):
                block = b"\0" * chunk
                while True:
                    try:
                        os.write(fd, block)
                    except OSError as exc:
                        if exc.errno != errno.ENOSPC:
                            raise
                        break
        finally:
            os.close(fd)
        assert os.statvfs(self.path).f_bavail == 0
        return self.ballast.stat().st_size

    def free(self) -> None:
        self.ballast.unlink()


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture
def small_filesystem(tmp_path: Path) -> Iterator[SmallFilesystem]:
    """A fresh 4 MiB tmpfs mounted on a directory of this test."""
    mount = tmp_path / "fs"
    mount.mkdir()
    if os.geteuid() != 0:
        _unavailable("mounting a tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={SIZE},mode=0700", "tmpfs",
                           str(mount)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        _unavailable(f"cannot mount a tmpfs: {(done.stderr or done.stdout).strip()}")
    try:
        yield SmallFilesystem(mount)
    finally:
        # A failed test may leave the spool open: then detach lazily, so nothing stays mounted.
        if subprocess.run(["umount", str(mount)], capture_output=True, check=False).returncode:
            subprocess.run(["umount", "-l", str(mount)], check=True)
