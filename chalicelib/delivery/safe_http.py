"""The one outbound HTTP path every channel uses, guarded against SSRF and slow peers.

Targets are user-supplied URLs, so every connection is made to an address that was
resolved once and checked to be public: the socket connects to that exact IP (no second
lookup a rebinding DNS server could answer differently), while the Host header, TLS SNI
and certificate checks keep using the hostname. A name is refused when ANY of its
addresses is non-public: a name mixing public and private answers is either
misconfigured or an attack, and refusing it keeps the save-time and delivery-time
verdicts the same whichever address the connection would have picked.

Each attempt has a total deadline (DNS + connect + TLS + send + headers + body): a
watchdog (one thread for every attempt of the process) shuts the attempt's socket down
when it expires, which unblocks any read
or write in progress however slowly the peer trickles bytes. Once the status line and
headers have arrived, the status is the answer: a 2xx whose body the deadline cuts is a
delivery the receiver accepted (noted, not sent again). Redirects are returned,
never followed; at most `max_response_bytes` of a body are read; environment proxies,
.netrc and cookies are ignored. Error texts name only scheme://host:port, never a path
or query, which may carry a token (Telegram's /bot<token>/).
"""

from __future__ import annotations

import contextlib
import errno as errnos
import heapq
import http.client
import ipaddress
import itertools
import os
import socket
import ssl
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from urllib3 import BaseHTTPResponse, HTTPHeaderDict, PoolManager, Timeout
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import (
    ConnectTimeoutError,
    NameResolutionError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
)
from urllib3.util.retry import Retry

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
AddrInfo = tuple[socket.AddressFamily, socket.SocketKind, int, str, tuple[Any, ...]]

SAVE_TIME_RESOLVE_SECONDS = 5.0
"""A save-time lookup slower than this is treated like a name that does not resolve yet."""

_READ_CHUNK = 16384
_CUT_AT_DEADLINE = "response body cut at deadline"
_DEFAULT_PORTS = {"http": 80, "https": 443}

# Cloud metadata and credential endpoints: refused even when private targets are allowed.
_METADATA = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OCI instance metadata
        "169.254.170.2",  # ECS task metadata and credentials
        "169.254.170.23",  # EKS Pod Identity agent
        "fd00:ec2::254",  # AWS IMDS over IPv6
        "fd00:ec2::23",  # EKS Pod Identity agent over IPv6
        "100.100.100.200",  # Alibaba Cloud metadata
    )
)
_SHARED = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT
_PRIVATE = tuple(
    ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")
)
# Listed explicitly so the verdict does not depend on which Python patch release's
# is_global is running; is_global still catches anything else it knows about.
_RESERVED = tuple(
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",  # "this network"
        "192.0.0.0/24",  # IETF protocol assignments
        "192.0.2.0/24",  # documentation
        "198.51.100.0/24",  # documentation
        "203.0.113.0/24",  # documentation
        "198.18.0.0/15",  # benchmarking
        "192.88.99.0/24",  # deprecated 6to4 relay anycast
        "240.0.0.0/4",  # reserved, including the broadcast address
        "::/96",  # deprecated IPv4-compatible IPv6
        "64:ff9b:1::/48",  # local-use NAT64: embeds whatever the operator routes
        "100::/64",  # discard-only
        "2001::/23",  # IETF protocol assignments: Teredo, benchmarking 2001:2::/48, ORCHID
        "2001:db8::/32",  # documentation
        "3fff::/20",  # documentation
        "5f00::/16",  # SRv6 SIDs
        "fec0::/10",  # deprecated site-local
    )
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class UnsafeTarget(ValueError):
    """A target URL Herald must not call; the message says why (and never shows the path)."""


def refusal_reason(address: str | IPAddress, *, allow_private: bool = False) -> str | None:
    """Why `address` must not be called, e.g. "a private address"; None when it may be.

    `allow_private` (local development) lets loopback, RFC 1918 / ULA and CGNAT
    addresses through, never link-local, metadata, multicast or reserved ones.
    """
    ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    if isinstance(ip, ipaddress.IPv6Address) and ip.scope_id:
        ip = ipaddress.IPv6Address(str(ip).split("%", 1)[0])
    if ip in _METADATA:
        return "a cloud metadata address"
    if isinstance(ip, ipaddress.IPv6Address):
        for inner in _embedded_ipv4(ip):
            why = refusal_reason(inner, allow_private=allow_private)
            if why is not None:
                return f"an IPv6 address embedding {inner}, {why}"
        if ip.ipv4_mapped is not None or ip in _NAT64:
            return None  # these reach exactly the embedded address, which passed
    return _range_reason(ip, allow_private=allow_private)


def _range_reason(ip: IPAddress, *, allow_private: bool) -> str | None:
    if ip.is_unspecified:
        return "an unspecified address"
    if ip.is_loopback:
        return None if allow_private else "a loopback address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_multicast:
        return "a multicast address"
    if ip in _SHARED:
        return None if allow_private else "a shared (CGNAT) address"
    if any(ip in net for net in _PRIVATE):
        return None if allow_private else "a private address"
    if any(ip in net for net in _RESERVED) or not ip.is_global:
        return "a reserved address"
    return None


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address delivers to: mapped, NAT64, 6to4, Teredo."""
    if ip.ipv4_mapped is not None:
        return [ip.ipv4_mapped]
    if ip in _NAT64:
        return [ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)]
    if ip.sixtofour is not None:
        return [ip.sixtofour]
    if ip.teredo is not None:
        return list(ip.teredo)  # (server, client)
    return []


@dataclass(frozen=True)
class _Target:
    scheme: str
    host: str
    port: int

    @property
    def origin(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


def _parse(url: str) -> _Target:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise UnsafeTarget("the URL is malformed or its port is invalid") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise UnsafeTarget(f"scheme {scheme!r} is not http or https")
    if not parts.hostname:
        raise UnsafeTarget("the URL has no host")
    return _Target(scheme, parts.hostname, port or _DEFAULT_PORTS[scheme])


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def _resolve(host: str, port: int, timeout: float | None) -> list[AddrInfo]:
    """getaddrinfo, bounded by `timeout` (it has no timeout of its own): a lookup that
    overruns raises TimeoutError and finishes, ignored, on its daemon thread."""
    if timeout is None or _literal(host) is not None:
        return _dedupe(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
    box: list[Any] = []  # the answer or the exception

    def lookup() -> None:
        try:
            box.append(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
        except BaseException as exc:
            box.append(exc)

    worker = threading.Thread(target=lookup, name="herald-dns", daemon=True)
    worker.start()
    worker.join(max(timeout, 0.0))
    if not box:
        raise TimeoutError(f"resolving {host} took longer than {timeout:g}s")
    if isinstance(box[0], BaseException):
        raise box[0]
    return _dedupe(box[0])


def _dedupe(infos: Sequence[AddrInfo]) -> list[AddrInfo]:
    seen: set[tuple[Any, ...]] = set()
    unique = []
    for info in infos:
        if info[4] not in seen:
            seen.add(info[4])
            unique.append(info)
    return unique


def _check_addresses(host: str, infos: Sequence[AddrInfo], *, allow_private: bool) -> None:
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        why = refusal_reason(address, allow_private=allow_private)
        if why is not None:
            if _literal(host) is not None:
                raise UnsafeTarget(f"{address} is {why}")
            raise UnsafeTarget(f"{host} resolves to {address}, {why}")


# Special-use names that mean this machine or its own network whatever public DNS says
# (RFC 6761, 6762 and 8375, ICANN's .internal): suffix -> what the refusal says.
_LOCAL_NAMES = {
    "localhost": "names this machine",
    "local": "is a multicast DNS name of the local network",
    "internal": "is a private network name",
    "home.arpa": "is a home network name",
}


def _check_local_name(host: str) -> None:
    """Refuse a host that is a special-use local name, however it is spelt (any case, a
    trailing dot, full-width letters): such a name is never a public target, yet it may
    not resolve when saved, which check_target would accept."""
    try:
        name = host.rstrip(".").encode("idna").decode("ascii").lower()
    except UnicodeError:
        return  # not a valid host name: the lookup refuses it
    for suffix, why in _LOCAL_NAMES.items():
        if name == suffix or name.endswith("." + suffix):
            raise UnsafeTarget(f"{host} {why}; use a public address")


def check_target(url: str, *, allow_private: bool) -> None:
    """Save-time check: raise UnsafeTarget for a bad scheme or a non-public target: a
    literal or resolved non-public address, or a special-use local name (refused by name,
    before any lookup, unless private targets are allowed). A name that does not resolve
    (yet) is accepted: delivery checks again, on the address it actually connects to."""
    target = _parse(url)
    if not allow_private:
        _check_local_name(target.host)
    literal = _literal(target.host)
    if literal is not None:
        why = refusal_reason(literal, allow_private=allow_private)
        if why is not None:
            raise UnsafeTarget(f"{literal} is {why}")
        return
    try:
        infos = _resolve(target.host, target.port, SAVE_TIME_RESOLVE_SECONDS)
    except (socket.gaierror, TimeoutError):
        return
    except UnicodeError:
        raise UnsafeTarget("the host name is invalid") from None
    _check_addresses(target.host, infos, allow_private=allow_private)


# ---------------------------------------------------------------- one attempt's deadline


class _Attempt:
    """One post's deadline and policy, seen by the connection code through a thread-local.

    Watched sockets are duplicates of the connection's file descriptor: shutting one down
    ends the TCP stream for every holder (TLS included), and the duplicate stays valid
    even after http.client or TLS wrapping closes or detaches the original object.
    """

    def __init__(self, seconds: float, allow_private: bool) -> None:
        self.seconds = seconds
        self.allow_private = allow_private
        self.ends_at = time.monotonic() + seconds
        self._lock = threading.Lock()
        self._watched: list[socket.socket] = []
        self._expired = False
        self._done = False

    def start(self) -> None:
        _WATCHDOG.watch(self)

    @property
    def done(self) -> bool:
        return self._done

    @property
    def expired(self) -> bool:
        return self._expired or time.monotonic() >= self.ends_at

    def remaining(self) -> float:
        left = self.ends_at - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"deadline of {self.seconds:g}s exceeded")
        return left

    def watch(self, sock: socket.socket) -> None:
        try:
            dup = socket.fromfd(sock.fileno(), sock.family, sock.type, sock.proto)
        except OSError:
            return
        with self._lock:
            if not self._done and not self._expired:
                self._watched.append(dup)
                return
            if self._expired:
                _shutdown(dup)
        dup.close()

    def release(self) -> None:
        """The connection went back to the pool: it is no longer this attempt's to cut."""
        with self._lock:
            self._close_watched()

    def finish(self) -> None:
        with self._lock:
            self._done = True
            self._close_watched()

    def expire(self) -> None:
        """The deadline passed: cut every socket of the attempt (the watchdog calls this)."""
        with self._lock:
            if self._done:
                return
            self._expired = True
            for sock in self._watched:
                _shutdown(sock)

    def _close_watched(self) -> None:
        for sock in self._watched:
            sock.close()
        self._watched.clear()


class _Watchdog:
    """Every attempt's deadline on one daemon thread: a heap of deadlines, the earliest
    waited for. A thread per attempt (threading.Timer) cost a third of a bare POST's CPU.
    Finished attempts leave the heap when they reach its top (their expiry is a no-op)."""

    def __init__(self) -> None:
        self._due: list[tuple[float, int, _Attempt]] = []
        self._order = itertools.count()
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None

    def watch(self, attempt: _Attempt) -> None:
        with self._changed:
            heapq.heappush(self._due, (attempt.ends_at, next(self._order), attempt))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="herald-deadlines", daemon=True)
                self._thread.start()
            self._changed.notify()

    def _run(self) -> None:
        while True:
            with self._changed:
                while self._due and self._due[0][2].done:
                    heapq.heappop(self._due)
                if not self._due:
                    self._changed.wait()
                    continue
                left = self._due[0][0] - time.monotonic()
                if left > 0:
                    self._changed.wait(left)
                    continue
                attempt = heapq.heappop(self._due)[2]
            attempt.expire()


_WATCHDOG = _Watchdog()


def _shutdown(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


_local = threading.local()


def _current() -> _Attempt | None:
    attempt: _Attempt | None = getattr(_local, "attempt", None)
    return attempt


# ---------------------------------------------------------------- guarded connections


def _guarded_socket(conn: HTTPConnection) -> socket.socket:
    """Resolve once, refuse non-public answers, connect to the checked address itself."""
    attempt = _current()
    allow_private = attempt.allow_private if attempt else False
    host = str(getattr(conn, "_dns_host", conn.host))
    port = int(conn.port or 0)
    default = conn.timeout if isinstance(conn.timeout, int | float) else None
    try:
        infos = _resolve(host, port, attempt.remaining() if attempt else default)
        _check_addresses(host, infos, allow_private=allow_private)
        sock = _connect(infos, attempt, default, conn.socket_options)
    except socket.gaierror as exc:
        raise NameResolutionError(conn.host, conn, exc) from exc
    except TimeoutError as exc:
        raise ConnectTimeoutError(conn, f"connecting to {conn.host} timed out") from exc
    except OSError as exc:
        raise NewConnectionError(conn, f"failed to connect to {conn.host}: {exc.strerror}") from exc
    if attempt is not None:
        attempt.watch(sock)
        conn._herald_attempt = attempt  # type: ignore[attr-defined]
    return sock


def _connect(
    infos: Sequence[AddrInfo],
    attempt: _Attempt | None,
    default: float | None,
    options: Sequence[tuple[int, int, int | bytes]] | None,
) -> socket.socket:
    error: OSError = OSError(errnos.EHOSTUNREACH, "no address to connect to")
    for family, kind, proto, _, sockaddr in infos:
        sock = socket.socket(family, kind, proto)
        try:
            for option in options or ():
                sock.setsockopt(*option)
            sock.settimeout(attempt.remaining() if attempt else default)
            sock.connect(sockaddr)
        except OSError as exc:
            sock.close()
            error = exc
            if isinstance(exc, TimeoutError):
                break  # the deadline is spent; the next address would time out too
        else:
            return sock
    raise error


def _watch_reused(conn: HTTPConnection) -> None:
    """A pooled keep-alive connection was checked when it was made; only its deadline
    is new."""
    attempt = _current()
    if attempt is None or conn.sock is None:
        return
    if getattr(conn, "_herald_attempt", None) is not attempt:
        attempt.watch(conn.sock)
        conn._herald_attempt = attempt  # type: ignore[attr-defined]


class _GuardedHTTPConnection(HTTPConnection):
    def _new_conn(self) -> socket.socket:
        return _guarded_socket(self)

    def request(self, *args: Any, **kwargs: Any) -> None:
        _watch_reused(self)
        super().request(*args, **kwargs)


class _GuardedHTTPSConnection(HTTPSConnection):
    def _new_conn(self) -> socket.socket:
        return _guarded_socket(self)

    def request(self, *args: Any, **kwargs: Any) -> None:
        _watch_reused(self)
        super().request(*args, **kwargs)


def _released(conn: Any) -> None:
    attempt = _current()
    if attempt is not None:
        attempt.release()


class _GuardedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _GuardedHTTPConnection

    def _put_conn(self, conn: Any) -> None:
        _released(conn)
        super()._put_conn(conn)


class _GuardedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _GuardedHTTPSConnection

    def _put_conn(self, conn: Any) -> None:
        _released(conn)
        super()._put_conn(conn)


# ---------------------------------------------------------------- the sender


@dataclass(frozen=True)
class HttpResult:
    """What one attempt got. `status` is None when no status line and headers arrived;
    with a status, `error` says why the body is incomplete, if it is."""

    status: int | None
    headers: Mapping[str, str]
    body: bytes
    duration_ms: int
    error: str | None
    refused: bool = False
    """The SSRF guard refused the target: a permanent failure."""
    timed_out: bool = False
    truncated: bool = False


class SafeSender:
    """A pooled, thread-safe sender; one per container, sized to the delivery concurrency."""

    def __init__(
        self,
        *,
        pool_size: int = 10,
        allow_private: bool = False,
        deadline: float = 10.0,
        max_response_bytes: int = 65536,
        user_agent: str = "Herald-Webhooks/1.0",
        ca_certs: str | None = None,
    ) -> None:
        """`ca_certs`: a PEM file of the authorities to trust instead of the system's."""
        if deadline <= 0 or max_response_bytes < 0 or pool_size < 1:
            raise ValueError("deadline and pool_size must be positive, max_response_bytes not negative")
        self.allow_private = allow_private
        self.deadline = deadline
        self.max_response_bytes = max_response_bytes
        self._headers = {"User-Agent": user_agent, "Accept": "*/*", "Accept-Encoding": "identity"}
        # urllib3 itself, not requests: no proxies, .netrc or cookies to switch off, and a
        # third less CPU per post, which the pool's threads share under one interpreter lock.
        self._pools = PoolManager(
            num_pools=pool_size, maxsize=pool_size, retries=Retry(0, read=False), ca_certs=ca_certs
        )
        self._pools.pool_classes_by_scheme = {"http": _GuardedHTTPPool, "https": _GuardedHTTPSPool}

    def post(
        self, url: str, *, body: bytes, headers: Mapping[str, str], deadline: float | None = None
    ) -> HttpResult:
        """POST `body`; never raises for remote trouble, returns it classified instead."""
        seconds = self.deadline if deadline is None else deadline
        started = time.monotonic()

        def failed(error: str, *, refused: bool = False, timed_out: bool = False) -> HttpResult:
            ms = int((time.monotonic() - started) * 1000)
            return HttpResult(None, HTTPHeaderDict(), b"", ms, error, refused, timed_out)

        try:
            target = _parse(url)
        except UnsafeTarget as exc:
            return failed(f"refused: {exc}", refused=True)
        attempt = _Attempt(seconds, self.allow_private)
        _local.attempt = attempt
        attempt.start()
        response: BaseHTTPResponse | None = None
        try:
            response = self._pools.request(
                "POST",
                url,
                body=body,
                headers=self._with_defaults(headers),
                preload_content=False,
                redirect=False,
                timeout=Timeout(connect=seconds, read=seconds),
            )
            if attempt.expired:  # the watchdog's shutdown looks like the end of the headers
                return failed(f"deadline of {seconds:g}s exceeded", timed_out=True)
            content, truncated, cut = self._read_body(response, attempt, target)
            ms = int((time.monotonic() - started) * 1000)
            return HttpResult(
                response.status,
                response.headers,
                content,
                ms,
                cut,
                timed_out=cut == _CUT_AT_DEADLINE,
                truncated=truncated,
            )
        except Exception as exc:
            attempt.finish()
            chain = _chain(exc)
            unsafe = next((e for e in chain if isinstance(e, UnsafeTarget)), None)
            if unsafe is not None:
                return failed(f"refused: {unsafe}", refused=True)
            if attempt.expired or any(isinstance(e, TimeoutError | ReadTimeoutError) for e in chain):
                return failed(f"deadline of {seconds:g}s exceeded", timed_out=True)
            return failed(_describe(chain, target))
        finally:
            attempt.finish()
            _local.attempt = None
            if response is not None:  # a fully read body has already gone back to the pool
                response.close()  # else its connection cannot be reused: close it
                response.release_conn()

    def _with_defaults(self, headers: Mapping[str, str]) -> HTTPHeaderDict:
        """The caller's headers over the sender's defaults, names compared without case."""
        merged = HTTPHeaderDict(self._headers)
        for name, value in headers.items():
            merged[name] = value
        return merged

    def _read_body(
        self, response: BaseHTTPResponse, attempt: _Attempt, target: _Target
    ) -> tuple[bytes, bool, str | None]:
        """Read at most max_response_bytes: the body, whether more may have followed, and
        why it is incomplete. The status line and headers are the answer, so a body cut by
        the deadline or a broken connection is noted rather than failing the attempt: a
        receiver that said 2xx has accepted the delivery, and sending again duplicates it."""
        buffer = bytearray()
        try:
            while len(buffer) < self.max_response_bytes and not attempt.expired:
                chunk = response.read(
                    min(_READ_CHUNK, self.max_response_bytes - len(buffer)), decode_content=False
                )
                if not chunk:
                    break
                buffer += chunk
        except Exception as exc:
            if not attempt.expired:
                return bytes(buffer), True, f"response body cut: {_describe(_chain(exc), target)}"
        if attempt.expired:  # the watchdog may also end a body with a plain end of stream
            return bytes(buffer), True, _CUT_AT_DEADLINE
        return bytes(buffer), len(buffer) >= self.max_response_bytes and not response.closed, None

    def close(self) -> None:
        self._pools.clear()


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception and everything it wraps (urllib3 nests its causes)."""
    found: list[BaseException] = []
    todo = [exc]
    while todo:
        current = todo.pop(0)
        if any(current is seen for seen in found):
            continue
        found.append(current)
        nested = (getattr(current, "reason", None), current.__cause__, current.__context__, *current.args)
        todo.extend(e for e in nested if isinstance(e, BaseException))
    return found


def _describe(chain: list[BaseException], target: _Target) -> str:
    """A transport error in our own words: library messages quote the URL's path."""
    origin = target.origin

    def first(kind: type[BaseException] | tuple[type[BaseException], ...]) -> BaseException | None:
        return next((e for e in chain if isinstance(e, kind)), None)

    if first((socket.gaierror, NameResolutionError)) is not None:
        return f"could not resolve {target.host}"
    cert = first(ssl.SSLCertVerificationError)
    if isinstance(cert, ssl.SSLCertVerificationError):
        return f"TLS certificate of {origin} not accepted: {cert.verify_message}"
    tls = first(ssl.SSLError)
    if isinstance(tls, ssl.SSLError):
        return f"TLS error with {origin}: {tls.reason or 'handshake failed'}"
    if first(ConnectionRefusedError) is not None:
        return f"connection refused by {origin}"
    if first(http.client.RemoteDisconnected) is not None:
        return f"connection closed by {origin} without a response"
    if first((ConnectionResetError, BrokenPipeError, ConnectionAbortedError)) is not None:
        return f"connection reset by {origin}"
    if first(http.client.IncompleteRead) is not None or first(ProtocolError) is not None:
        return f"connection to {origin} broken before the response was complete"
    if first(http.client.HTTPException) is not None:
        return f"invalid HTTP response from {origin}"
    os_error = next((e for e in chain if isinstance(e, OSError) and e.errno), None)
    if isinstance(os_error, OSError) and os_error.errno:
        return f"{os.strerror(os_error.errno).lower()} ({origin})"
    return f"{type(chain[-1]).__name__} talking to {origin}"
