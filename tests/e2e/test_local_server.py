"""Where `chalice local` differs from API Gateway, the local stack answers as Herald deployed
does (herald_local.chalice_local): it drops all but the first of a repeated header, yet Herald
must still see a second Authorization header and refuse it; and it answers a path no route
matches with a 403 that echoes the Authorization header, yet Herald answers a JSON 404."""

from __future__ import annotations

import http.client
import json

import pytest

from tests.e2e.conftest import HOST, KEY, Stack

OTHER = "Bearer hk_someone-elses-key-0123456789abcdef"


def get(stack: Stack, path: str, *authorizations: str) -> tuple[int, bytes]:
    """GET `path` with these Authorization headers, one line each."""
    connection = http.client.HTTPConnection(HOST, stack.api_port, timeout=30)
    try:
        connection.putrequest("GET", path)
        for authorization in authorizations:
            connection.putheader("Authorization", authorization)
        connection.endheaders()
        answer = connection.getresponse()
        return answer.status, answer.read()
    finally:
        connection.close()


def status(stack: Stack, *authorizations: str) -> int:
    return get(stack, "/notification-handlers", *authorizations)[0]


def test_one_authorization_header_is_accepted(local_stack: Stack) -> None:
    assert status(local_stack, f"Bearer {KEY}") == 200


@pytest.mark.parametrize("valid_first", [True, False])
def test_a_second_authorization_header_is_refused(local_stack: Stack, valid_first: bool) -> None:
    headers = (f"Bearer {KEY}", OTHER) if valid_first else (OTHER, f"Bearer {KEY}")
    assert status(local_stack, *headers) == 401


@pytest.mark.parametrize("depth", [3, 40])
def test_a_path_no_route_serves_is_a_json_404_that_echoes_nothing(local_stack: Stack, depth: int) -> None:
    code, body = get(local_stack, "/nothing" * depth, OTHER)
    assert code == 404
    assert json.loads(body)["errors"][0]["status"] == 404
    assert b"someone-elses-key" not in body
