"""`chalice local` drops all but the first of a repeated header; Herald must still see a second
Authorization header, and refuse it."""

from __future__ import annotations

import http.client

import pytest

from tests.e2e.conftest import HOST, KEY, Stack

OTHER = "Bearer hk_someone-elses-key-0123456789abcdef"


def status(stack: Stack, *authorizations: str) -> int:
    """GET /notification-handlers with these Authorization headers, one line each."""
    connection = http.client.HTTPConnection(HOST, stack.api_port, timeout=30)
    try:
        connection.putrequest("GET", "/notification-handlers")
        for authorization in authorizations:
            connection.putheader("Authorization", authorization)
        connection.endheaders()
        answer = connection.getresponse()
        answer.read()
        return answer.status
    finally:
        connection.close()


def test_one_authorization_header_is_accepted(local_stack: Stack) -> None:
    assert status(local_stack, f"Bearer {KEY}") == 200


@pytest.mark.parametrize("valid_first", [True, False])
def test_a_second_authorization_header_is_refused(local_stack: Stack, valid_first: bool) -> None:
    headers = (f"Bearer {KEY}", OTHER) if valid_first else (OTHER, f"Bearer {KEY}")
    assert status(local_stack, *headers) == 401
