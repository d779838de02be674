"""Debian's Chromium for the portal's browser tests, installed with apt-get when missing (as
DynamoDB Local is fetched from npm): Playwright drives it instead of a browser build of its own,
which could not be downloaded here."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
PACKAGES = ("chromium", "chromium-driver")
LOCK = Path("/tmp/herald-chromium-install.lock")  # noqa: S108 - one install per machine, across test workers


class Unavailable(RuntimeError):
    """Chromium is not installed and cannot be installed here (not root, or no apt-get)."""


def chromium() -> Path:
    """The Chromium executable, running `apt-get install -y chromium chromium-driver` first if
    it is missing (as root only; a few minutes, once per machine)."""
    with LOCK.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if CHROMIUM.exists():
            return CHROMIUM
        apt = shutil.which("apt-get")
        if apt is None or os.geteuid() != 0:
            raise Unavailable(f"{CHROMIUM} is missing: run `apt-get install -y {' '.join(PACKAGES)}` as root")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for command in ([apt, "update", "-q"], [apt, "install", "-y", "-q", *PACKAGES]):
            done = subprocess.run(command, check=False, capture_output=True, text=True, env=env, timeout=900)
            if done.returncode != 0:
                raise Unavailable(f"{' '.join(command)} failed: {done.stderr.strip()[-400:]}")
        return CHROMIUM
