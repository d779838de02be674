"""The SSRF guard's rules: which addresses are refused, and the save-time URL check."""

from __future__ import annotations

import re
import socket
from collections.abc import Callable
from typing import Any

import pytest

from chalicelib.delivery.safe_http import SafeSender, UnsafeTarget, check_target, refusal_reason

REFUSED = [
    # address, words the reason must contain
    ("127.0.0.1", "loopback"),
    ("127.255.0.9", "loopback"),
    ("::1", "loopback"),
    ("10.0.0.1", "private"),
    ("172.16.5.4", "private"),
    ("172.31.255.255", "private"),
    ("192.168.1.1", "private"),
    ("fc00::1", "private"),
    ("fd12:3456::1", "private"),
    ("169.254.169.254", "metadata"),
    ("169.254.170.2", "metadata"),
    ("fd00:ec2::254", "metadata"),
    ("100.100.100.200", "metadata"),
    ("169.254.1.1", "link-local"),
    ("fe80::1", "link-local"),
    ("fe80::1%eth0", "link-local"),
    ("100.64.0.1", "shared"),
    ("100.127.255.254", "shared"),
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"),
    ("ff02::1", "multicast"),
    ("0.0.0.0", "unspecified"),  # noqa: S104
    ("::", "unspecified"),
    ("0.1.2.3", "reserved"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.255", "reserved"),
    ("192.0.0.8", "reserved"),
    ("192.0.2.1", "reserved"),  # documentation
    ("198.51.100.7", "reserved"),  # documentation
    ("203.0.113.9", "reserved"),  # documentation
    ("198.18.0.1", "reserved"),  # benchmarking
    ("198.19.255.1", "reserved"),  # benchmarking
    ("2001:db8::1", "reserved"),  # documentation
    ("3fff::1", "reserved"),  # documentation
    ("2001:2::1", "reserved"),  # benchmarking
    ("100::1", "reserved"),  # discard
    ("fec0::1", "reserved"),  # site-local
    ("64:ff9b:1::a00:1", "reserved"),  # local-use NAT64
    ("::7f00:1", "reserved"),  # IPv4-compatible ::127.0.0.1
    ("::808:808", "reserved"),  # IPv4-compatible, even of a public address
    # IPv4-mapped
    ("::ffff:127.0.0.1", "embedding 127.0.0.1, a loopback"),
    ("::ffff:10.1.2.3", "embedding 10.1.2.3, a private"),
    ("::ffff:169.254.169.254", "embedding 169.254.169.254, a cloud metadata"),
    # NAT64
    ("64:ff9b::a9fe:a9fe", "embedding 169.254.169.254, a cloud metadata"),
    ("64:ff9b::7f00:1", "embedding 127.0.0.1, a loopback"),
    ("64:ff9b::c0a8:101", "embedding 192.168.1.1, a private"),
    # 6to4
    ("2002:a00:1::1", "embedding 10.0.0.1, a private"),
    ("2002:7f00:1::", "embedding 127.0.0.1, a loopback"),
    ("2002:a9fe:a9fe::1", "embedding 169.254.169.254, a cloud metadata"),
    # Teredo: server 65.54.227.120, client is the complement of the last 32 bits
    ("2001:0:4136:e378:8000:63bf:80ff:fffe", "embedding 127.0.0.1, a loopback"),
    ("2001:0:4136:e378:8000:63bf:f5ff:fffe", "embedding 10.0.0.1, a private"),
    ("2001:0:a00:1:8000:63bf:f7f7:f7f7", "embedding 10.0.0.1, a private"),  # server 10.0.0.1
    # Teredo is refused whole even with public ends: 2001::/23 is not globally reachable
    ("2001:0:4136:e378:8000:63bf:f7f7:f7f7", "reserved"),
]

PUBLIC = [
    "8.8.8.8",
    "1.1.1.1",
    "93.184.215.14",
    "100.63.255.255",  # just below CGNAT
    "100.128.0.1",  # just above CGNAT
    "172.32.0.1",  # just above 172.16/12
    "2606:4700:4700::1111",
    "2a00:1450:4001:80b::200e",
    "::ffff:8.8.8.8",  # IPv4-mapped public: it is 8.8.8.8
    "64:ff9b::808:808",  # NAT64 of 8.8.8.8
    "2002:808:808::1",  # 6to4 of 8.8.8.8
]


@pytest.mark.parametrize(("address", "words"), REFUSED)
def test_non_public_addresses_are_refused_with_the_reason(address: str, words: str) -> None:
    reason = refusal_reason(address, allow_private=False)
    assert reason is not None
    assert words in reason


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_allowed(address: str) -> None:
    assert refusal_reason(address, allow_private=False) is None


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "::1",
        "10.0.0.1",
        "172.20.0.3",
        "192.168.0.10",
        "fd12::1",
        "100.64.0.1",
        "::ffff:127.0.0.1",
    ],
)
def test_allow_private_lets_loopback_private_and_cgnat_through(address: str) -> None:
    assert refusal_reason(address, allow_private=True) is None


@pytest.mark.parametrize(
    "address",
    [
        "169.254.169.254",
        "fd00:ec2::254",
        "100.100.100.200",
        "::ffff:169.254.169.254",
        "64:ff9b::a9fe:a9fe",
        "169.254.1.1",
        "fe80::1",
        "224.0.0.1",
        "0.0.0.0",  # noqa: S104
        "240.0.0.1",
        "192.0.2.1",
    ],
)
def test_allow_private_never_allows_metadata_link_local_or_reserved(address: str) -> None:
    assert refusal_reason(address, allow_private=True) is not None


# ---------------------------------------------------------------- check_target


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> Callable[[dict[str, list[str]]], list[str]]:
    """Answer getaddrinfo from a table; a name missing from it does not resolve."""
    lookups: list[str] = []

    def install(table: dict[str, list[str]]) -> list[str]:
        def fake(host: str, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
            lookups.append(host)
            if host not in table:
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
            return [
                (
                    socket.AF_INET6 if ":" in ip else socket.AF_INET,
                    socket.SOCK_STREAM,
                    6,
                    "",
                    (ip, port or 0, 0, 0) if ":" in ip else (ip, port or 0),
                )
                for ip in table[host]
            ]

        monkeypatch.setattr(socket, "getaddrinfo", fake)
        return lookups

    return install


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("http://127.0.0.1/hook", "127.0.0.1 is a loopback address"),
        ("https://10.0.0.1:8443/hook", "10.0.0.1 is a private address"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a cloud metadata address"),
        ("http://[::1]:8080/", "::1 is a loopback address"),
        ("http://[::ffff:10.0.0.1]/", "embedding 10.0.0.1"),
        ("http://[fe80::1%25eth0]/", "link-local"),
    ],
)
def test_a_literal_non_public_address_is_refused_at_save_time(url: str, words: str) -> None:
    with pytest.raises(UnsafeTarget, match=words):
        check_target(url, allow_private=False)


def test_a_literal_public_address_is_accepted_without_a_lookup(dns: Any) -> None:
    lookups = dns({})
    check_target("https://8.8.8.8/hook", allow_private=False)
    check_target("https://[2606:4700:4700::1111]/hook", allow_private=False)
    assert lookups == []


def test_a_name_resolving_to_a_private_address_is_refused(dns: Any) -> None:
    dns({"internal.example.com": ["10.1.2.3"]})
    with pytest.raises(
        UnsafeTarget, match=r"internal\.example\.com resolves to 10\.1\.2\.3, a private address"
    ):
        check_target("https://internal.example.com/hook", allow_private=False)


def test_a_name_with_any_private_answer_is_refused(dns: Any) -> None:
    dns({"mixed.example.com": ["93.184.215.14", "2606:4700::1", "127.0.0.1"]})
    with pytest.raises(UnsafeTarget, match=re.escape("127.0.0.1, a loopback address")):
        check_target("https://mixed.example.com/", allow_private=False)


def test_a_name_resolving_to_public_addresses_is_accepted(dns: Any) -> None:
    dns({"hooks.example.com": ["93.184.215.14", "2606:4700:4700::1111"]})
    check_target("https://hooks.example.com/hook?x=1", allow_private=False)


def test_a_name_that_does_not_resolve_yet_is_accepted_at_save_time(dns: Any) -> None:
    lookups = dns({})
    check_target("https://not-yet.example.com/hook", allow_private=False)
    assert lookups == ["not-yet.example.com"]


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("http://localhost/hook", "localhost names this machine; use a public address"),
        ("https://API.Localhost.:8443/h", "api.localhost. names this machine"),
        ("http://printer.local/h", "printer.local is a multicast DNS name of the local network"),
        ("http://metadata.google.internal/", "metadata.google.internal is a private network name"),
        ("http://nas.home.arpa/h", "nas.home.arpa is a home network name"),
        ("http://\uff4c\uff4f\uff43\uff41\uff4c\uff48\uff4f\uff53\uff54/h", "names this machine"),
    ],
)
def test_a_special_use_local_name_is_refused_by_name_before_any_lookup(
    dns: Any, url: str, words: str
) -> None:
    lookups = dns({})
    with pytest.raises(UnsafeTarget, match=re.escape(words)):
        check_target(url, allow_private=False)
    assert lookups == []


def test_a_name_ending_like_a_local_name_is_looked_up_as_any_other(dns: Any) -> None:
    lookups = dns({})
    check_target("https://notlocalhost/hook", allow_private=False)
    check_target("https://internal.example.com/hook", allow_private=False)
    assert lookups == ["notlocalhost", "internal.example.com"]


def test_allow_private_accepts_loopback_and_private_but_not_metadata(dns: Any) -> None:
    dns({"localhost": ["127.0.0.1"], "imds.example.com": ["169.254.169.254"]})
    check_target("http://127.0.0.1:8080/hook", allow_private=True)
    check_target("http://10.0.0.5/hook", allow_private=True)
    check_target("http://localhost:9000/hook", allow_private=True)
    with pytest.raises(UnsafeTarget, match="metadata"):
        check_target("http://169.254.169.254/latest/meta-data/", allow_private=True)
    with pytest.raises(UnsafeTarget, match="metadata"):
        check_target("http://imds.example.com/", allow_private=True)


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("ftp://example.com/file", "scheme 'ftp'"),
        ("file:///etc/passwd", "scheme 'file'"),
        ("gopher://example.com:70/", "scheme 'gopher'"),
        ("javascript:alert(1)", "scheme 'javascript'"),
        ("example.com/hook", "scheme ''"),
        ("http:///hook", "no host"),
        ("http://example.com:99999/", "port"),
    ],
)
def test_non_http_or_malformed_urls_are_refused(url: str, words: str) -> None:
    with pytest.raises(UnsafeTarget, match=words):
        check_target(url, allow_private=True)


def test_refusal_messages_never_show_the_path_or_query(dns: Any) -> None:
    dns({"internal.example.com": ["10.1.2.3"]})
    with pytest.raises(UnsafeTarget) as refused:
        check_target(
            "https://user:pw@internal.example.com/bot123:SECRET/send?token=SECRET", allow_private=False
        )
    assert "SECRET" not in str(refused.value)
    assert "pw" not in str(refused.value)


def test_the_sender_refuses_a_bad_scheme_as_a_permanent_result() -> None:
    sender = SafeSender()
    try:
        result = sender.post("file:///etc/passwd", body=b"{}", headers={})
    finally:
        sender.close()
    assert result.refused
    assert result.status is None
    assert result.error is not None
    assert result.error.startswith("refused: ")


def test_the_sender_rejects_nonsense_settings() -> None:
    with pytest.raises(ValueError, match="positive"):
        SafeSender(deadline=0)
