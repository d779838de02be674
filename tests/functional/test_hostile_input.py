"""Hostile input on every route and every body encoding: a clear 4xx, never a 500, nothing written.

The table-driven tests name each attack of the hostile-input issue; the property-based tests
(hypothesis) throw generated bodies, ids and paths at every route of every face and check
the three rules after each request: no 5xx, a JSON error that says what is wrong, and the
table exactly as it was before any 4xx.
"""

# ruff: noqa: RUF001, RUF003 (look-alike digits are what these tests send)
from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib import clients
from chalicelib.api.docs import ROUTES
from chalicelib.api.fallback import MAX_SEGMENTS
from chalicelib.settings import get_settings
from tests.moto_state import table_items

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
BOUNDARY = "hostileboundary"
WEBHOOK = {"name": "Hook", "type": "webhook", "webhook": "https://example.com/hook", "is_enabled": False}
EVENT = {"type": "deployment", "app": "shop", "type_data": {"status": "success"}}
ORG = "0" * 24


def snapshot() -> list[dict[str, Any]]:
    """Every item of the table but rate-limit windows (requests count there by design)."""
    return table_items("RATE#")


def send(
    api: Any, method: str, path: str, body: bytes = b"", content_type: str = JSON, **headers: str
) -> Any:
    return api.http.request(method, path, headers={"Content-Type": content_type, **headers}, body=body)


def message_of(answer: Any) -> str:
    """The error text of any face's error shape, asserting that it is JSON and says something."""
    assert answer.headers["Content-Type"] == JSON
    body = json.loads(answer.body)
    if "errors" in body and isinstance(body["errors"], list):  # primary face
        text = " ".join(f"{e.get('field', '')} {e['detail']}" for e in body["errors"])
    elif "errors" in body:  # PaaS face: {field: [messages]}
        text = " ".join(f"{field} {' '.join(m)}" for field, m in body["errors"].items())
    elif isinstance(body.get("error"), dict):  # app-distribution face
        text = body["error"]["message"]
    else:
        text = str(body.get("error", ""))
    assert text.strip(), f"an error that says nothing: {answer.body!r}"
    return text


def assert_refused(answer: Any, status: int | tuple[int, ...], *words: str) -> str:
    statuses = (status,) if isinstance(status, int) else status
    assert answer.status_code in statuses, answer.body
    text = message_of(answer)
    for word in words:
        assert word in text, f"{word!r} not in {text!r}"
    return text


@pytest.fixture
def hook(api: Any, auth: dict[str, str]) -> int:
    answer = send(api, "POST", "/notification-handlers", json.dumps(WEBHOOK).encode(), **auth)
    assert answer.status_code == 201
    return int(answer.json_body["data"]["id"])


# --- deep nesting -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [b"[" * 100_000, b'{"a":' * 5_000 + b"1" + b"}" * 5_000, b'{"type_data":' + b"[" * 40 + b"]" * 40 + b"}"],
    ids=["array-100000-deep", "object-5000-deep", "type-data-40-deep"],
)
@pytest.mark.parametrize("path", ["/v1/events", "/notification-handlers", "/v1/apps/shop/notifiers"])
def test_too_deep_json_is_a_400_and_writes_nothing(
    api: Any, auth: dict[str, str], body: bytes, path: str
) -> None:
    before = snapshot()
    assert_refused(send(api, "POST", path, body, **auth), 400, "nested deeper than 32 levels")
    assert snapshot() == before


def test_nesting_inside_a_string_is_only_text(api: Any, auth: dict[str, str], stack: None) -> None:
    event = {**EVENT, "type_data": {"brackets": "[" * 10_000 + "{" * 10_000}}
    assert send(api, "POST", "/v1/events", json.dumps(event).encode(), **auth).status_code == 202


# --- numbers and text DynamoDB cannot store ----------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    ["1e300", "1" * 61, "-1e300", "1e-200", "5e-324", "1.5e126", "123456789012345678901234567890123456789"],
)
def test_a_number_dynamodb_cannot_store_is_a_400_naming_its_path(
    api: Any, auth: dict[str, str], raw: str
) -> None:
    before = snapshot()
    body = f'{{"type":"deployment","app":"fresh-app","type_data":{{"nested":[1,{{"big":{raw}}}]}}}}'
    assert_refused(send(api, "POST", "/v1/events", body.encode(), **auth), 400, "type_data.nested.1.big")
    assert snapshot() == before, "a refused event must not create its app either"


def test_numbers_dynamodb_can_store_are_kept(api: Any, auth: dict[str, str], stack: None) -> None:
    data = {"max": 9.99e125, "tiny": 1e-130, "digits": int("9" * 38), "zero": 0.0, "neg": -12.5}
    answer = send(api, "POST", "/v1/events", json.dumps({**EVENT, "type_data": data}).encode(), **auth)
    assert answer.status_code == 202, answer.body


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_not_json_numbers(api: Any, auth: dict[str, str], constant: str) -> None:
    body = f'{{"type":"deployment","type_data":{{"x":{constant}}}}}'.encode()
    assert_refused(send(api, "POST", "/v1/events", body, **auth), 400, f"{constant} is not a JSON number")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ('{"type":"deployment","type_data":{"s":"\\ud800"}}', "type_data.s"),
        ('{"type":"deployment","user":{"username":"a\\udfffb"}}', "user.username"),
        ('{"type":"deployment","type_data":{"k\\ud800":1}}', "type_data"),
        ('{"name":"\\ud800","type":"internal_notification"}', "name"),
    ],
)
def test_a_lone_surrogate_is_a_400_naming_the_field(
    api: Any, auth: dict[str, str], body: str, field: str
) -> None:
    path = "/notification-handlers" if '"name"' in body else "/v1/events"
    before = snapshot()
    assert_refused(send(api, "POST", path, body.encode(), **auth), 400, field, "lone surrogate")
    assert snapshot() == before


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        (FORM, b"name=%ED%A0%80&type=internal_notification"),
        (FORM, b"name=%FF&type=internal_notification"),
        (FORM, b"name=\xff\xfe&type=internal_notification"),
        (
            f"multipart/form-data; boundary={BOUNDARY}",
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="name"\r\n\r\n'.encode()
            + b"\xff\xfe\r\n"
            + f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="type"\r\n\r\n'
            f"internal_notification\r\n--{BOUNDARY}--\r\n".encode(),
        ),
    ],
    ids=["form-surrogate-escape", "form-bad-escape", "form-raw-bytes", "multipart-raw-bytes"],
)
def test_invalid_utf8_in_forms_is_a_400(
    api: Any, auth: dict[str, str], content_type: str, body: bytes
) -> None:
    before = snapshot()
    assert_refused(send(api, "POST", "/notification-handlers", body, content_type, **auth), 400, "UTF-8")
    assert snapshot() == before


# --- malformed multipart ------------------------------------------------------------------------------


def _part(name: str | None, value: str) -> str:
    disposition = "form-data" + (f'; name="{name}"' if name is not None else "")
    return f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n\r\n{value}\r\n"


@pytest.mark.parametrize(
    ("content_type", "body", "why"),
    [
        (
            f"multipart/form-data; boundary={BOUNDARY}",
            _part("name", "A") + _part("type", "internal_notification"),
            "no closing delimiter",
        ),
        ("multipart/form-data; boundary=", _part("name", "A") + f"--{BOUNDARY}--\r\n", "no boundary"),
        ("multipart/form-data", _part("name", "A") + f"--{BOUNDARY}--\r\n", "no boundary"),
        (
            f"multipart/form-data; boundary={BOUNDARY}",
            _part("name", "A") + _part(None, "internal_notification") + f"--{BOUNDARY}--\r\n",
            "malformed",
        ),
        (
            f"multipart/form-data; boundary={BOUNDARY}",
            _part("name", "A") + _part("", "internal_notification") + f"--{BOUNDARY}--\r\n",
            "no field name",
        ),
        (f"multipart/form-data; boundary={BOUNDARY}", "garbage", "malformed"),
    ],
    ids=[
        "no-closing-delimiter",
        "empty-boundary",
        "no-boundary",
        "part-without-name",
        "empty-name",
        "garbage",
    ],
)
def test_malformed_multipart_is_a_400_not_a_field_dropped(
    api: Any, auth: dict[str, str], content_type: str, body: str, why: str
) -> None:
    before = snapshot()
    answer = send(api, "POST", "/notification-handlers", body.encode(), content_type, **auth)
    assert_refused(answer, 400, "multipart body", why)
    assert snapshot() == before


# --- ids and nulls ------------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", ["²", "١", "０", " 1", "1_0", "+1", "-1", "0", "1" * 13])
@pytest.mark.parametrize("route", [("GET", ""), ("PATCH", ""), ("DELETE", ""), ("GET", "/deliveries")])
def test_only_ascii_digits_name_a_handler(
    api: Any, auth: dict[str, str], hook: int, raw: str, route: tuple[str, str]
) -> None:
    assert hook == 1  # so that '١' (Arabic-Indic one) would alias it if read as a digit
    method, suffix = route
    before = snapshot()
    answer = send(api, method, f"/notification-handlers/{raw}{suffix}", b'{"name":"x"}', **auth)
    assert_refused(answer, (400, 404))
    assert snapshot() == before


@pytest.mark.parametrize("raw", ["١", "０", "1_0", " 2", "²"])
@pytest.mark.parametrize("parameter", ["page", "results_per_page"])
def test_only_ascii_digits_are_page_numbers(api: Any, auth: dict[str, str], raw: str, parameter: str) -> None:
    answer = api.http.get(f"/notification-handlers?{urlencode({parameter: raw})}", headers=auth)
    assert_refused(answer, 400, parameter)


@pytest.mark.parametrize("field", ["name", "is_enabled", "webhook", "send_all_events", "app"])
def test_null_for_a_field_that_cannot_be_null_is_a_400(
    api: Any, auth: dict[str, str], hook: int, field: str
) -> None:
    before = snapshot()
    body = json.dumps({field: None}).encode()
    assert_refused(send(api, "PATCH", f"/notification-handlers/{hook}", body, **auth), 400, field, "null")
    created = json.dumps({**WEBHOOK, field: None}).encode()
    assert_refused(send(api, "POST", "/notification-handlers", created, **auth), 400, field, "null")
    assert snapshot() == before


# --- unknown routes and methods -----------------------------------------------------------------------

SECRET = "Bearer hk_not-a-real-key-but-secret-all-the-same"


@pytest.mark.parametrize(
    ("method", "path", "shape"),
    [
        ("GET", "/no/such/route", "errors"),
        ("POST", "/notification-handlers/1/nothing", "errors"),
        ("GET", "/v1/apps/shop/nothing", "error"),
        ("DELETE", f"/v1/organizations/{ORG}/apps/shop/nothing", "status"),
        ("GET", "/" + "/".join(["deep"] * MAX_SEGMENTS), "errors"),
    ],
)
def test_an_unknown_route_is_a_json_404_in_its_faces_shape(
    api: Any, method: str, path: str, shape: str
) -> None:
    answer = send(api, method, path, Authorization=SECRET)
    assert answer.status_code == 404
    assert shape in json.loads(answer.body)
    message_of(answer)
    assert b"not-a-real-key" not in answer.body


@pytest.mark.parametrize(
    ("method", "path", "allow", "shape"),
    [
        ("PUT", "/notification-handlers", "GET, POST", "errors"),
        ("PUT", "/notification-handlers/1", "DELETE, GET, PATCH, POST", "errors"),
        ("DELETE", "/v1/events", "GET, POST", "errors"),
        ("PUT", "/v1/apps/shop/notifiers/no-1", "DELETE, GET, PATCH", "error"),
        ("PATCH", f"/v1/organizations/{ORG}/apps/shop/notifications", "GET, POST", "status"),
    ],
)
def test_an_unsupported_method_is_a_json_405_with_allow(
    api: Any, method: str, path: str, allow: str, shape: str
) -> None:
    answer = send(api, method, path, Authorization=SECRET)
    assert answer.status_code == 405
    assert answer.headers["Allow"] == allow
    assert shape in json.loads(answer.body)
    assert_refused(answer, 405, method)
    assert b"not-a-real-key" not in answer.body


# --- the ingest queue ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ('{"account":"acme","type":"deployment","type_data":{"big":1e300}}', "type_data.big"),
        ('{"account":"acme","type":"deployment","type_data":{"s":"\\ud800"}}', "type_data.s"),
        ('{"account":"acme","type":"nope"}', "unknown event type"),
        ('{"account":"acme","type":"deployment","x":' + "[" * 50 + "]" * 50 + "}", "nested deeper"),
        ("not json", "not valid JSON"),
    ],
)
def test_a_message_that_can_never_be_ingested_goes_to_the_dlq_at_once(
    stack: None, body: str, reason: str
) -> None:
    from chalicelib.delivery.ingest import ingest_batch

    before = snapshot()
    record = {"messageId": "m-1", "body": body, "receiptHandle": "r"}
    assert ingest_batch([record]) == {"batchItemFailures": []}, "not to be redelivered"
    sqs = clients.client("sqs")
    answer = sqs.receive_message(
        QueueUrl=clients.queue_url(get_settings().ingest_dlq),
        MessageAttributeNames=["All"],
        WaitTimeSeconds=0,
    )
    (message,) = answer["Messages"]
    assert message["Body"] == body
    assert reason in message["MessageAttributes"]["reason"]["StringValue"]
    assert snapshot() == before


# --- property-based: every route, every encoding ------------------------------------------------------

HOSTILE_TEXT = [
    "\ud800",
    "a\udfffb",
    "²",
    "١",
    "０",
    "<script>alert(1)</script>",
    "'\"`",
    "",
    "x" * 3000,
    "\x00",
]
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=10**38, max_value=10**80),
    st.floats(allow_nan=False),
    st.sampled_from([1e300, -1e300, 1e-200, 5e-324, 1.5e126, 9.99e125]),
    st.text(max_size=20),
    st.sampled_from(HOSTILE_TEXT),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
)
FIELDS = [
    "name", "type", "webhook", "email", "slack", "is_enabled", "app", "selected_event_ids", "send_all_events",
    "type_data", "user", "id", "platform_id", "active", "notifier", "setup", "events", "telegram",
]  # fmt: skip


@st.composite
def bodies(draw: st.DrawFn) -> tuple[str, bytes]:
    """(content type, body): valid-looking JSON with hostile values, forms, multipart, raw junk."""
    base = draw(st.sampled_from([WEBHOOK, EVENT, {"notifier": {"platform_id": "1", "name": "n"}}, {}]))
    fields = {**base, **draw(st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=3))}
    kind = draw(st.sampled_from(["json", "json", "form", "multipart", "raw"]))
    if kind == "json":
        return JSON, json.dumps(fields).encode("utf-8", "surrogatepass")
    flat = [(k, v if isinstance(v, str) else json.dumps(v)) for k, v in fields.items()]
    if kind == "form":
        return FORM, urlencode(flat, encoding="utf-8", errors="surrogatepass").encode()
    if kind == "multipart":
        parts = "".join(_part(k, v) for k, v in flat) + draw(st.sampled_from([f"--{BOUNDARY}--\r\n", ""]))
        return f"multipart/form-data; boundary={BOUNDARY}", parts.encode("utf-8", "surrogatepass")
    raw = draw(st.sampled_from([b"[" * 5000, b'{"a":NaN}', b"\xff\xfe", b'{"type":', b"null", b"[]", b'"s"']))
    return draw(st.sampled_from([JSON, FORM, "text/plain"])), raw


SEGMENT = st.one_of(
    st.sampled_from(["1", "²", "١", "０", "1_0", " 1", "+1", "-1"]),
    st.sampled_from(["1", "2", "999999999999", "no-1", "shop", ORG, "a" * 24, "x", *HOSTILE_TEXT[1:5]]),
    st.text(alphabet=st.characters(exclude_categories=["Cs", "Cc"], exclude_characters="/?#%"), max_size=8),
)
import app  # noqa: E402  (fills ROUTES: every face registers its routes on import)

ROUTE_PATHS = sorted({(r.method, r.path) for r in ROUTES if not r.path.endswith("/test")})
assert app.app.routes and ROUTE_PATHS


@st.composite
def paths(draw: st.DrawFn, template: str) -> str:
    """A path on `template` with generated parameters and query, or (for "*") on no route.
    Segments go unquoted: API Gateway hands them to the function decoded, as this does."""
    if template == "*":
        return "/" + "/".join(draw(st.lists(SEGMENT.filter(bool), min_size=1, max_size=4)))
    path = "/".join(
        draw(SEGMENT.filter(bool)) if part.startswith("{") else part for part in template.split("/")
    )
    if draw(st.booleans()):
        names = st.sampled_from(["page", "results_per_page", "status", "limit"])
        query = draw(st.dictionaries(names, SEGMENT))
        path += "?" + urlencode(query, encoding="utf-8", errors="surrogatepass")
    return path


@pytest.fixture
def seeded(stack: None, hook: int, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A handler to aim at, no outbound network (loopback discard port for Slack)."""
    monkeypatch.setenv("HERALD_SLACK_API_URL", "http://127.0.0.1:9")
    yield


FUZZ = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.mark.parametrize(("method", "template"), [*ROUTE_PATHS, ("ANY", "*")])
def test_no_route_answers_5xx_and_no_refusal_writes(
    api: Any, auth: dict[str, str], seeded: None, method: str, template: str
) -> None:
    @FUZZ
    @given(
        path=paths(template), body=bodies(), verb=st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE"])
    )
    def attack(path: str, body: tuple[str, bytes], verb: str) -> None:
        really = verb if method == "ANY" else method
        content_type, raw = body
        before = snapshot()
        sent = raw if really in ("POST", "PUT", "PATCH") else b""
        answer = send(api, really, path, sent, content_type, **auth)
        assert answer.status_code < 500, (really, path, raw[:200], answer.body)
        if answer.status_code >= 400:
            message_of(answer)
            assert snapshot() == before, (really, path, raw[:200], answer.body)

    attack()


EVENT_FIELDS = ["type_data", "user", "app", "id", "type"]
EVENT_CASES = 300
"""Generated events in all, an equal share per field: one test per field, so xdist workers
share them."""


@pytest.mark.parametrize("field", EVENT_FIELDS)
@settings(FUZZ, max_examples=EVENT_CASES // len(EVENT_FIELDS))
@given(value=json_values)
def test_events_with_any_value_are_published_or_refused_cleanly(
    api: Any, auth: dict[str, str], seeded: None, value: Any, field: str
) -> None:
    before = snapshot()
    body = json.dumps({**EVENT, field: value}).encode("utf-8", "surrogatepass")
    answer = send(api, "POST", "/v1/events", body, **auth)
    assert answer.status_code in (202, 400), answer.body
    if answer.status_code == 400:
        assert field in message_of(answer) or "JSON" in message_of(answer)
        assert snapshot() == before
