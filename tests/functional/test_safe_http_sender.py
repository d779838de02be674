"""The safe sender against real sockets on 127.0.0.1: redirects, caps, deadlines, the guard."""

from __future__ import annotations

import contextlib
import datetime as dt
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from chalicelib.delivery.safe_http import HttpResult, SafeSender, check_target

SECRET_PATH = "/bot123:SECRET/sendMessage?token=SECRET"


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    ends = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > ends:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


# ---------------------------------------------------------------- an HTTP server that records


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    body: bytes
    client_port: int


@dataclass
class Answer:
    status: int = 200
    body: bytes = b"ok"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


class Recorder:
    """ThreadingHTTPServer on 127.0.0.1 (HTTP/1.1, keep-alive) recording every POST."""

    def __init__(self, answer: Answer | None = None, tls: ssl.SSLContext | None = None) -> None:
        self.answer = answer or Answer()
        self.seen: list[Seen] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                recorder.seen.append(Seen(self.path, dict(self.headers), body, self.client_address[1]))
                answer = recorder.answer
                if answer.delay:
                    time.sleep(answer.delay)
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    def url(self, path: str = "/hook", host: str = "127.0.0.1", scheme: str = "http") -> str:
        return f"{scheme}://{host}:{self.port}{path}"

    def __enter__(self) -> Recorder:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


# ---------------------------------------------------------------- a raw socket server


def read_request(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        (
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length")
        ),
        0,
    )
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    return data


class RawServer:
    """Accepts connections and hands each to `behave` on its own thread; counts them."""

    def __init__(self, behave: Callable[[socket.socket, threading.Event], None]) -> None:
        self.behave = behave
        self.stop = threading.Event()
        self.accepted = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.05)
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def url(self, path: str = SECRET_PATH, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            self.accepted += 1
            threading.Thread(target=self._run, args=(conn,), daemon=True).start()

    def _run(self, conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):  # the client hung up: the test is over
            self.behave(conn, self.stop)

    def connections_before_now(self) -> int:
        """How many connections were made before this call: accept order is FIFO, so once
        our own probe connection is accepted every earlier one has been counted."""
        before = self.accepted
        with socket.create_connection(("127.0.0.1", self.port)):
            wait_for(lambda: self.accepted > before)
        return self.accepted - 1

    def __enter__(self) -> RawServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(5)
        self.listener.close()


def answer_ok(conn: socket.socket, stop: threading.Event) -> None:
    read_request(conn)
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")


def trickle_headers(conn: socket.socket, stop: threading.Event) -> None:
    read_request(conn)
    conn.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
    while not stop.wait(0.2):
        conn.sendall(b"a")


def trickle_body(
    framing: bytes, status: bytes = b"200 OK"
) -> Callable[[socket.socket, threading.Event], None]:
    def behave(conn: socket.socket, stop: threading.Event) -> None:
        read_request(conn)
        conn.sendall(b"HTTP/1.1 " + status + b"\r\n" + framing + b"\r\n")
        while not stop.wait(0.2):
            conn.sendall(b"x")

    return behave


def reset(conn: socket.socket, stop: threading.Event) -> None:
    read_request(conn)
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def hang_up(conn: socket.socket, stop: threading.Event) -> None:
    read_request(conn)


# ---------------------------------------------------------------- fixtures


@pytest.fixture
def sender() -> Iterator[SafeSender]:
    sender = SafeSender(allow_private=True, deadline=5.0)
    yield sender
    sender.close()


@pytest.fixture
def strict_sender() -> Iterator[SafeSender]:
    sender = SafeSender(allow_private=False, deadline=5.0)
    yield sender
    sender.close()


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> Callable[..., list[str]]:
    """Make names resolve as told (a list of answers is used up in order, the last
    repeating); other names go to the real resolver. Returns the lookups made."""
    real = socket.getaddrinfo
    lookups: list[str] = []

    def install(**table: list[str]) -> list[str]:
        answers = {name.replace("_", "."): list(ips) for name, ips in table.items()}

        def fake(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
            if host not in answers:
                return real(host, port, *args, **kwargs)
            lookups.append(host)
            ips = answers[host]
            ip = ips.pop(0) if len(ips) > 1 else ips[0]
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, int(port)))]

        monkeypatch.setattr(socket, "getaddrinfo", fake)
        return lookups

    return install


def post(sender: SafeSender, url: str, **kwargs: Any) -> HttpResult:
    return sender.post(url, body=b'{"hello":"world"}', headers={"Content-Type": "application/json"}, **kwargs)


# ---------------------------------------------------------------- answers


def test_a_200_comes_back_with_its_body_and_headers(sender: SafeSender) -> None:
    with Recorder(Answer(200, b'{"ok":true}', {"X-Request-Id": "r1"})) as server:
        result = post(sender, server.url("/hook"))
    assert result.status == 200
    assert result.body == b'{"ok":true}'
    assert result.headers["x-request-id"] == "r1"
    assert result.error is None
    assert not (result.refused or result.timed_out or result.truncated)
    (seen,) = server.seen
    assert seen.body == b'{"hello":"world"}'
    assert seen.headers["Content-Type"] == "application/json"
    assert seen.headers["User-Agent"] == "Herald-Webhooks/1.0"


def test_a_callers_header_replaces_the_default_whatever_its_case(sender: SafeSender) -> None:
    with Recorder() as server:
        sender.post(server.url("/hook"), body=b"{}", headers={"accept": "application/json"})
    (seen,) = server.seen
    assert [value for name, value in seen.headers.items() if name.lower() == "accept"] == ["application/json"]


def test_a_redirect_is_returned_not_followed(sender: SafeSender) -> None:
    with Recorder() as target, Recorder(Answer(302, b"", {"Location": target.url("/elsewhere")})) as server:
        result = post(sender, server.url("/hook"))
        assert result.status == 302
        assert result.headers["location"] == target.url("/elsewhere")
        assert target.seen == []
        assert len(server.seen) == 1


def test_a_large_body_is_cut_at_the_cap(sender: SafeSender) -> None:
    with Recorder(Answer(200, b"x" * 1_000_000)) as server:
        result = post(sender, server.url())
    assert result.status == 200
    assert len(result.body) == 65536
    assert result.truncated


def test_a_body_exactly_at_the_cap_is_not_truncated() -> None:
    sender = SafeSender(allow_private=True, max_response_bytes=10)
    try:
        with Recorder(Answer(200, b"0123456789")) as server:
            exact = post(sender, server.url())
            server.answer = Answer(200, b"0123456789A")
            over = post(sender, server.url())
    finally:
        sender.close()
    assert (exact.body, exact.truncated) == (b"0123456789", False)
    assert (over.body, over.truncated) == (b"0123456789", True)


# ---------------------------------------------------------------- the deadline


def test_trickling_headers_are_cut_at_the_deadline_without_a_status(sender: SafeSender) -> None:
    with RawServer(trickle_headers) as server:
        started = time.monotonic()
        result = post(sender, server.url(), deadline=1.0)
        elapsed = time.monotonic() - started
    assert result.timed_out
    assert result.status is None
    assert result.error == "deadline of 1s exceeded"
    assert elapsed < 1.0 + 3  # a correctness bound: without the watchdog it would never end


@pytest.mark.parametrize("status", [b"200 OK", b"503 Service Unavailable"])
@pytest.mark.parametrize(
    "framing", [b"Content-Length: 100000\r\n", b"Connection: close\r\n"], ids=["length", "until close"]
)
def test_a_trickling_body_is_cut_at_the_deadline_and_the_status_stands(
    sender: SafeSender, status: bytes, framing: bytes
) -> None:
    with RawServer(trickle_body(framing, status)) as server:
        started = time.monotonic()
        result = post(sender, server.url(), deadline=1.0)
        elapsed = time.monotonic() - started
        assert server.connections_before_now() == 1
    assert result.status == int(status.split()[0])
    assert result.timed_out
    assert result.truncated
    assert result.error == "response body cut at deadline"
    assert elapsed < 1.0 + 3


def test_a_body_broken_off_after_the_status_keeps_the_status(sender: SafeSender) -> None:
    def answer_part(conn: socket.socket, stop: threading.Event) -> None:
        read_request(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npart")

    with RawServer(answer_part) as server:
        result = post(sender, server.url())
    assert result.status == 200
    assert result.truncated
    assert not result.timed_out
    assert result.error is not None
    assert result.error.startswith("response body cut: connection to http://127.0.0.1:")
    assert "SECRET" not in result.error


def test_a_finished_attempt_leaves_its_pooled_connection_alone(sender: SafeSender) -> None:
    with Recorder() as server:
        assert post(sender, server.url(), deadline=0.3).status == 200
        time.sleep(0.5)  # past the first attempt's deadline: its watchdog must be gone
        assert post(sender, server.url(), deadline=0.3).status == 200
    first, second = server.seen
    assert first.client_port == second.client_port  # kept alive and reused


# ---------------------------------------------------------------- transport errors


def test_a_reset_connection_is_an_error_without_a_status(sender: SafeSender) -> None:
    with RawServer(reset) as server:
        result = post(sender, server.url())
    assert result.status is None
    assert not result.refused
    assert not result.timed_out
    assert result.error == f"connection reset by http://127.0.0.1:{server.port}"


def test_a_server_hanging_up_without_answering_is_an_error(sender: SafeSender) -> None:
    with RawServer(hang_up) as server:
        result = post(sender, server.url())
    assert result.status is None
    assert result.error == f"connection closed by http://127.0.0.1:{server.port} without a response"


def test_errors_never_show_the_path_or_query(sender: SafeSender) -> None:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    result = post(sender, f"http://user:pw@127.0.0.1:{port}{SECRET_PATH}")
    assert result.status is None
    assert result.error == f"connection refused by http://127.0.0.1:{port}"
    assert "SECRET" not in result.error
    assert "pw" not in result.error


def test_an_unresolvable_name_is_a_retryable_error(sender: SafeSender) -> None:
    result = post(sender, "https://no-such-host.invalid" + SECRET_PATH)
    assert result.status is None
    assert not result.refused
    assert result.error == "could not resolve no-such-host.invalid"


# ---------------------------------------------------------------- the guard


def test_a_local_target_is_refused_without_connecting(strict_sender: SafeSender) -> None:
    with RawServer(answer_ok) as server:
        result = post(strict_sender, server.url())
        assert server.connections_before_now() == 0
    assert result.refused
    assert result.status is None
    assert result.error == "refused: 127.0.0.1 is a loopback address"


def test_a_name_rebound_to_loopback_after_the_save_check_is_refused(
    strict_sender: SafeSender, dns: Callable[..., list[str]]
) -> None:
    lookups = dns(rebind_example_test=["93.184.215.14", "127.0.0.1"])
    with RawServer(answer_ok) as server:
        url = server.url(host="rebind.example.test")
        check_target(url, allow_private=False)  # saved while it pointed somewhere public
        result = post(strict_sender, url)
        assert server.connections_before_now() == 0
    assert result.refused
    assert result.error == "refused: rebind.example.test resolves to 127.0.0.1, a loopback address"
    assert lookups == ["rebind.example.test", "rebind.example.test"]


def test_the_connection_goes_to_the_address_checked_with_one_lookup(
    sender: SafeSender, dns: Callable[..., list[str]]
) -> None:
    # Any second lookup would answer the metadata address, which is always refused.
    lookups = dns(hooks_example_test=["127.0.0.1", "169.254.169.254"])
    with Recorder() as server:
        result = post(sender, server.url("/hook", host="hooks.example.test"))
    assert result.status == 200
    assert lookups == ["hooks.example.test"]
    assert server.seen[0].headers["Host"] == f"hooks.example.test:{server.port}"


def test_the_metadata_address_is_refused_even_when_private_targets_are_allowed(
    sender: SafeSender, dns: Callable[..., list[str]]
) -> None:
    dns(imds_example_test=["169.254.169.254"])
    result = post(sender, "http://imds.example.test/latest/meta-data/")
    assert result.refused
    assert result.error == "refused: imds.example.test resolves to 169.254.169.254, a cloud metadata address"


def test_proxies_from_the_environment_are_ignored(
    sender: SafeSender, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    with Recorder() as server:
        result = post(sender, server.url())
    assert result.status == 200
    assert len(server.seen) == 1


def test_cookies_are_never_sent_back(sender: SafeSender) -> None:
    with Recorder(Answer(200, b"ok", {"Set-Cookie": "session=tenant-a; Path=/"})) as server:
        post(sender, server.url())
        post(sender, server.url())
    assert all("Cookie" not in seen.headers for seen in server.seen)


# ---------------------------------------------------------------- pooling


def test_ten_parallel_posts_through_a_pool_of_ten_all_complete() -> None:
    sender = SafeSender(allow_private=True, pool_size=10)
    try:
        with Recorder(Answer(200, b"ok", delay=0.3)) as server, ThreadPoolExecutor(10) as pool:
            results = list(pool.map(lambda i: post(sender, server.url(f"/hook/{i}")), range(10)))
    finally:
        sender.close()
    assert [r.status for r in results] == [200] * 10
    assert sorted(seen.path for seen in server.seen) == sorted(f"/hook/{i}" for i in range(10))


# ---------------------------------------------------------------- TLS to the checked address


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """A throwaway CA and a certificate for hooks.example.test signed by it."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    folder = tmp_path_factory.mktemp("tls")
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Herald test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hooks.example.test")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("hooks.example.test")]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_file, cert_file, key_file = folder / "ca.pem", folder / "cert.pem", folder / "key.pem"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return ca_file, cert_file, key_file


@pytest.fixture
def tls_server(tls_files: tuple[Path, Path, Path]) -> Iterator[tuple[Recorder, list[str | None]]]:
    _, cert_file, key_file = tls_files
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    sni: list[str | None] = []
    context.sni_callback = lambda _sock, name, _ctx: sni.append(name)  # type: ignore[assignment,func-returns-value]
    with Recorder(tls=context) as server:
        yield server, sni


def test_tls_verifies_the_hostname_while_connecting_to_the_checked_address(
    tls_files: tuple[Path, Path, Path],
    tls_server: tuple[Recorder, list[str | None]],
    dns: Callable[..., list[str]],
) -> None:
    server, sni = tls_server
    lookups = dns(hooks_example_test=["127.0.0.1"])
    sender = SafeSender(allow_private=True, deadline=5.0, ca_certs=str(tls_files[0]))  # the test CA
    result = post(sender, server.url("/hook", host="hooks.example.test", scheme="https"))
    sender.close()
    assert result.status == 200, result.error
    assert sni == ["hooks.example.test"]
    assert server.seen[0].headers["Host"] == f"hooks.example.test:{server.port}"
    assert lookups == ["hooks.example.test"]


def test_an_untrusted_certificate_is_an_error_naming_only_the_origin(
    sender: SafeSender, tls_server: tuple[Recorder, list[str | None]], dns: Callable[..., list[str]]
) -> None:
    server, _ = tls_server
    dns(hooks_example_test=["127.0.0.1"])
    result = post(sender, server.url(SECRET_PATH, host="hooks.example.test", scheme="https"))
    assert result.status is None
    assert not result.refused
    assert result.error is not None
    assert result.error.startswith(
        f"TLS certificate of https://hooks.example.test:{server.port} not accepted"
    )
    assert "SECRET" not in result.error
    assert server.seen == []
