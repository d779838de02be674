"""Every validation error of the notification-handlers API, through chalice.test on moto.

Each refused request answers a 4xx (never a 500) with Content-Type application/json and
`{"errors": [{"status", "title", "detail", "field"?}]}` naming the field and the problem,
and writes nothing: no handler, no id taken, an existing handler left as it was.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import pytest

from chalicelib.api.bodies import MAX_BODY_BYTES
from chalicelib.channels import SETTINGS
from chalicelib.channels.fields import MAX_URL_LENGTH
from chalicelib.models.handlers import SETTING_FIELDS, TYPE_FIELDS, URL_FIELDS
from chalicelib.storage.table import from_ddb
from tests.moto_state import table_items

PATH = "/notification-handlers"
JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
BOUNDARY = "----heraldvalidationboundary"
SLACK_URL = "https://hooks.slack.com/services/T0/B0/x"


def valid(field: str) -> str:
    """A value the field accepts."""
    if field in URL_FIELDS:
        return f"https://example.com/{field}"
    if field == "email":
        return "hey@example.com"
    return f"{field}-value-1234"


def complete(handler_type: str, **fields: Any) -> dict[str, Any]:
    """A valid create body of `handler_type`, with `fields` added or replaced."""
    body: dict[str, Any] = {"name": "Example", "type": handler_type}
    body.update({f: valid(f) for f in TYPE_FIELDS[handler_type]})
    body.update(fields)
    return body


def multipart(parts: list[tuple[str, str, str | None]]) -> tuple[str, bytes]:
    """(content type, body) of a multipart form; a part with a filename is a file upload."""
    chunks = []
    for name, value, filename in parts:
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"\r\nContent-Type: text/plain'
        chunks.append(f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n\r\n{value}\r\n")
    return f"multipart/form-data; boundary={BOUNDARY}", ("".join(chunks) + f"--{BOUNDARY}--\r\n").encode()


def encode(fields: dict[str, Any], kind: str) -> tuple[str, bytes]:
    if kind == "json":
        return JSON, json.dumps(fields).encode()
    if kind == "form":
        return FORM, urlencode(fields).encode()
    return multipart([(name, str(value), None) for name, value in fields.items()])


def send(api: Any, auth: dict[str, str], body: bytes, content_type: str = JSON, path: str = PATH) -> Any:
    return api.http.post(path, headers={**auth, "Content-Type": content_type}, body=body)


def send_fields(
    api: Any, auth: dict[str, str], fields: dict[str, Any], kind: str = "json", path: str = PATH
) -> Any:
    content_type, body = encode(fields, kind)
    return send(api, auth, body, content_type, path)


def stored_items() -> list[dict[str, Any]]:
    """Everything in the table but the API keys."""
    return [from_ddb(item) for item in table_items("APIKEY#")]


def assert_error(answer: Any, field: str | None, *phrases: str, status: int = 400) -> None:
    """A JSON error answer whose first error names `field` and contains every phrase."""
    assert answer.status_code == status, answer.body
    assert answer.headers.get("Content-Type") == JSON
    body = json.loads(answer.body)
    assert list(body) == ["errors"]
    assert body["errors"], body
    for error in body["errors"]:
        assert {"status", "title", "detail"} <= set(error) <= {"status", "title", "detail", "field"}
        assert error["status"] == status
        assert isinstance(error["title"], str) and error["title"]
    first = body["errors"][0]
    assert first.get("field") == field, first
    if field is not None:
        assert field in first["detail"]
    for phrase in phrases:
        assert phrase.lower() in first["detail"].lower(), first["detail"]


@pytest.fixture
def nothing_written(api: Any, auth: dict[str, str]) -> Any:
    """Checks after the test that the refused requests wrote nothing at all."""
    assert stored_items() == []
    yield
    assert stored_items() == []
    answer = api.http.get(PATH, headers=auth)
    assert answer.json_body["meta"]["total"] == 0


@pytest.fixture
def handler_id(api: Any, auth: dict[str, str]) -> Any:
    """An existing slack handler; after the test, the table must be exactly as before."""
    answer = send_fields(api, auth, {"name": "Ops", "type": "slack", "slack": SLACK_URL})
    assert answer.status_code == 201, answer.body
    before = stored_items()
    yield answer.json_body["data"]["id"]
    assert stored_items() == before


# --- the body as a whole -------------------------------------------------------------------


@pytest.mark.usefixtures("nothing_written")
@pytest.mark.parametrize(
    ("raw", "phrase"),
    [
        (b'{"name": "Example", "type": ', "not valid JSON"),
        (b"\xff\xfe{}", "not valid JSON"),
        (b'[{"name": "Example", "type": "internal_notification"}]', "must be an object"),
        (b'"internal_notification"', "must be an object"),
        (b"42", "must be an object"),
        (b"null", "must be an object"),
    ],
)
def test_a_body_that_is_not_a_json_object_is_400(
    api: Any, auth: dict[str, str], raw: bytes, phrase: str
) -> None:
    assert_error(send(api, auth, raw), None, phrase)


@pytest.mark.usefixtures("nothing_written")
def test_a_form_body_that_is_not_utf8_is_400(api: Any, auth: dict[str, str]) -> None:
    assert_error(send(api, auth, b"name=\xff&type=internal_notification", FORM), None, "UTF-8")


@pytest.mark.usefixtures("nothing_written")
def test_a_multipart_body_that_cannot_be_parsed_is_400(api: Any, auth: dict[str, str]) -> None:
    assert_error(
        send(api, auth, b"no parts here", f"multipart/form-data; boundary={BOUNDARY}"), None, "multipart"
    )


@pytest.mark.usefixtures("nothing_written")
def test_a_multipart_file_part_is_refused_naming_it(api: Any, auth: dict[str, str]) -> None:
    content_type, body = multipart(
        [
            ("name", "Example", None),
            ("type", "internal_notification", None),
            ("attachment", "file content", "notes.txt"),
        ]
    )
    assert_error(send(api, auth, body, content_type), "attachment", "file uploads are not accepted")


@pytest.mark.usefixtures("nothing_written")
@pytest.mark.parametrize("kind", ["json", "form", "multipart"])
def test_a_body_over_256_kb_is_refused(api: Any, auth: dict[str, str], kind: str) -> None:
    fields = complete("internal_notification", name="n" * MAX_BODY_BYTES)
    assert_error(send_fields(api, auth, fields, kind), None, f"at most {MAX_BODY_BYTES} bytes")


@pytest.mark.usefixtures("nothing_written")
@pytest.mark.parametrize("content_type", ["text/plain", "application/xml"])
def test_an_unsupported_content_type_is_415_in_the_json_error_format(
    api: Any, auth: dict[str, str], content_type: str
) -> None:
    answer = send(api, auth, b"name=Example&type=internal_notification", content_type)
    assert_error(answer, None, "Content-Type", status=415)


# --- create ----------------------------------------------------------------------------------


@pytest.mark.usefixtures("nothing_written")
@pytest.mark.parametrize(
    ("fields", "field", "phrases"),
    [
        ({"type": "internal_notification"}, "name", ["required"]),
        ({"name": "Example"}, "type", ["required"]),
        ({"name": "Example", "type": "sms"}, "type", ["must be one of", *SETTINGS]),
        ({"name": "", "type": "internal_notification"}, "name", ["at least 1"]),
        ({"name": "   ", "type": "internal_notification"}, "name", ["at least 1"]),
        ({"name": "n" * 129, "type": "internal_notification"}, "name", ["at most 128"]),
        ({"name": "Example", "type": "internal_notification", "colour": "red"}, "colour", ["unknown field"]),
        ({"name": "Example", "type": "internal_notification", "settings": {}}, "settings", ["unknown field"]),
        (
            {"name": "Example", "type": "internal_notification", "is_enabled": "maybe"},
            "is_enabled",
            ["boolean"],
        ),
        ({"name": "Example", "type": "email", "email": "not-an-address"}, "email", ["valid email"]),
        ({"name": "Example", "type": "email", "email": "a@b@example.com"}, "email", ["valid email"]),
    ],
    ids=[
        "missing name",
        "missing type",
        "unknown type",
        "empty name",
        "blank name",
        "name too long",
        "unknown field",
        "nested settings",
        "bad boolean",
        "bad email",
        "two at-signs",
    ],
)
def test_a_bad_create_is_400_naming_the_field(
    api: Any,
    auth: dict[str, str],
    fields: dict[str, Any],
    field: str,
    phrases: list[str],
) -> None:
    assert_error(send_fields(api, auth, fields), field, *phrases)


@pytest.mark.usefixtures("nothing_written")
@pytest.mark.parametrize("kind", ["form", "multipart"])
@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"type": "internal_notification"}, ("name", "required")),
        (
            {"name": "Example", "type": "internal_notification", "is_enabled": "maybe"},
            ("is_enabled", "boolean"),
        ),
        ({"name": "Example", "type": "internal_notification", "colour": "red"}, ("colour", "unknown field")),
    ],
    ids=["missing name", "bad boolean", "unknown field"],
)
def test_form_and_multipart_bodies_are_validated_alike(
    api: Any, auth: dict[str, str], fields: dict[str, Any], expected: tuple[str, str], kind: str
) -> None:
    assert_error(send_fields(api, auth, fields, kind), *expected)


@pytest.mark.usefixtures("nothing_written")
@pytest.mark.parametrize(
    ("handler_type", "missing"),
    [(t, f) for t, fields in TYPE_FIELDS.items() for f in fields],
)
def test_each_type_requires_each_of_its_fields(
    api: Any, auth: dict[str, str], handler_type: str, missing: str
) -> None:
    fields = complete(handler_type)
    del fields[missing]
    assert_error(send_fields(api, auth, fields), missing, "required", handler_type)


@pytest.mark.usefixtures("nothing_written")
@pytest.mark.parametrize("handler_type", list(TYPE_FIELDS))
def test_a_field_of_another_type_is_refused(api: Any, auth: dict[str, str], handler_type: str) -> None:
    foreign = next(f for f in SETTING_FIELDS if f not in TYPE_FIELDS[handler_type])
    fields = complete(handler_type, **{foreign: valid(foreign)})
    assert_error(send_fields(api, auth, fields), foreign, "not available", handler_type)


@pytest.mark.usefixtures("nothing_written")
@pytest.mark.parametrize(
    ("url", "phrase"),
    [
        ("/hooks/relative", "absolute http"),
        ("hooks.example.com/path", "absolute http"),
        ("ftp://files.example.com/hook", "absolute http"),
        ("javascript:alert(1)", "absolute http"),
        ("https://", "absolute http"),
        ("https://example.com/a path", "whitespace"),
        ("https://example.com:99999/hook", "not a valid URL"),
        ("https://example.com/" + "a" * (MAX_URL_LENGTH - len("https://example.com/") + 1), "at most 2048"),
    ],
    ids=["relative", "no scheme", "ftp", "javascript", "no host", "space", "bad port", "too long"],
)
@pytest.mark.parametrize("field", sorted(URL_FIELDS))
def test_a_bad_url_is_refused_naming_the_field(
    api: Any, auth: dict[str, str], field: str, url: str, phrase: str
) -> None:
    handler_type = next(t for t, fields in TYPE_FIELDS.items() if field in fields)
    assert_error(send_fields(api, auth, complete(handler_type, **{field: url})), field, phrase)


def test_a_url_of_exactly_2048_characters_is_accepted(api: Any, auth: dict[str, str]) -> None:
    """The boundary of the case above: the limit itself is allowed."""
    url = "https://example.com/" + "a" * (MAX_URL_LENGTH - len("https://example.com/"))
    answer = send_fields(api, auth, complete("slack", slack=url))
    assert answer.status_code == 201, answer.body


@pytest.mark.usefixtures("nothing_written")
def test_several_problems_are_all_reported(api: Any, auth: dict[str, str]) -> None:
    answer = send_fields(api, auth, {"name": "", "type": "sms", "colour": "red"})
    assert_error(answer, "name")
    assert {e["field"] for e in answer.json_body["errors"]} == {"name", "type", "colour"}


# --- update ----------------------------------------------------------------------------------


def test_changing_type_without_the_new_types_fields_is_refused(
    api: Any, auth: dict[str, str], handler_id: int
) -> None:
    answer = send_fields(api, auth, {"type": "telegram"}, path=f"{PATH}/{handler_id}")
    assert_error(answer, "telegram", "required", "telegram")
    answer = send_fields(api, auth, {"type": "telegram", "telegram": "1:token"}, path=f"{PATH}/{handler_id}")
    assert_error(answer, "telegram_chat_id", "required", "telegram")


def test_an_update_with_a_field_of_another_type_is_refused(
    api: Any, auth: dict[str, str], handler_id: int
) -> None:
    answer = send_fields(api, auth, {"email": "hey@example.com"}, path=f"{PATH}/{handler_id}")
    assert_error(answer, "email", "not available", "slack")
    answer = send_fields(
        api,
        auth,
        {"type": "webhook", "slack": SLACK_URL, "webhook": valid("webhook")},
        path=f"{PATH}/{handler_id}",
    )
    assert_error(answer, "slack", "not available", "webhook")


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"name": ""}, ("name", "at least 1")),
        ({"name": "n" * 129}, ("name", "at most 128")),
        ({"type": "sms"}, ("type", "must be one of")),
        ({"is_enabled": "maybe"}, ("is_enabled", "boolean")),
        ({"slack": "ftp://example.com/x"}, ("slack", "absolute http")),
        ({"slack": "https://example.com/a b"}, ("slack", "whitespace")),
        ({"colour": "red"}, ("colour", "unknown field")),
        ({"name": "Renamed", "colour": "red"}, ("colour", "unknown field")),
    ],
    ids=[
        "empty name",
        "long name",
        "unknown type",
        "bad boolean",
        "ftp url",
        "space in url",
        "unknown",
        "partial",
    ],
)
def test_a_bad_update_is_400_and_changes_nothing(
    api: Any, auth: dict[str, str], handler_id: int, fields: dict[str, Any], expected: tuple[str, str]
) -> None:
    assert_error(send_fields(api, auth, fields, path=f"{PATH}/{handler_id}"), *expected)


@pytest.mark.parametrize(
    ("raw", "phrase"),
    [
        (b"{not json", "not valid JSON"),
        (b'["name"]', "must be an object"),
        (json.dumps({"name": "n" * MAX_BODY_BYTES}).encode(), f"at most {MAX_BODY_BYTES} bytes"),
    ],
    ids=["invalid json", "array", "too large"],
)
def test_an_update_body_that_cannot_be_read_changes_nothing(
    api: Any, auth: dict[str, str], handler_id: int, raw: bytes, phrase: str
) -> None:
    assert_error(send(api, auth, raw, JSON, f"{PATH}/{handler_id}"), None, phrase)


def test_an_update_with_a_file_part_changes_nothing(api: Any, auth: dict[str, str], handler_id: int) -> None:
    content_type, body = multipart([("name", "Renamed", None), ("avatar", "GIF89a", "avatar.gif")])
    assert_error(send(api, auth, body, content_type, f"{PATH}/{handler_id}"), "avatar", "file uploads")
