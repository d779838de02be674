"""The generated OpenAPI document: valid 3.1, and it covers every route the app serves."""

from __future__ import annotations

from typing import Any

from openapi_spec_validator import validate

from chalicelib.api.fallback import FALLBACK


def test_the_document_is_valid_openapi_3_1(api: Any) -> None:
    answer = api.http.get("/openapi.json")
    assert answer.status_code == 200
    document = answer.json_body
    assert document["openapi"] == "3.1.0"
    assert document["servers"] == [{"url": "https://herald.test"}]
    validate(document)


def test_every_route_of_the_app_is_documented(api: Any) -> None:
    from app import app

    paths = api.http.get("/openapi.json").json_body["paths"]
    for path, methods in app.routes.items():
        for method, entry in methods.items():
            if getattr(entry.view_function, FALLBACK, False):
                continue  # the 404/405 answers for what no route serves
            assert method.lower() in paths.get(path, {}), f"{method} {path} is missing from /openapi.json"


def test_models_come_from_pydantic(api: Any) -> None:
    document = api.http.get("/openapi.json").json_body
    schemas = document["components"]["schemas"]
    assert {"HandlerOut", "HandlerCreateRequest", "EventInRequest", "ErrorBody"} <= set(schemas)
    create = document["paths"]["/notification-handlers"]["post"]
    assert set(create["responses"]) >= {"201", "400", "401", "415", "429"}
    assert create["security"] == [{"bearer": []}]
    assert "security" not in document["paths"]["/v1/event_types"]["get"]
