"""The OpenAPI 3.1 document, generated from the routes and their pydantic models."""

from __future__ import annotations

import re
from typing import Any

from chalice.app import Blueprint, Response
from pydantic import BaseModel

from chalicelib.api.docs import ROUTES, DocumentedRoute
from chalicelib.api.http import Call, api_route, json_response

bp = Blueprint(__name__)
_PATH_PARAM = re.compile(r"{([^}]+)}")
_ERROR_STATUSES = {
    400: "Invalid input",
    401: "Missing or invalid credentials",
    404: "Not found",
    409: "Conflict",
    415: "Unsupported media type",
    429: "Rate limited",
}


class _Components:
    """Collects model schemas under #/components/schemas, each once."""

    def __init__(self) -> None:
        self.schemas: dict[str, Any] = {}

    def ref(self, model: type[BaseModel]) -> dict[str, str]:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}", mode="serialization")
        self.schemas.update(schema.pop("$defs", {}))
        name = _component_name(schema.get("title", model.__name__))
        self.schemas[name] = schema
        return {"$ref": f"#/components/schemas/{name}"}

    def request_ref(self, model: type[BaseModel]) -> dict[str, str]:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}", mode="validation")
        self.schemas.update(schema.pop("$defs", {}))
        name = _component_name(f"{schema.get('title', model.__name__)}Request")
        self.schemas[name] = schema
        return {"$ref": f"#/components/schemas/{name}"}


def _component_name(title: str) -> str:
    """Generic models are titled like `Page[HandlerOut]`; component names allow [A-Za-z0-9._-]."""
    return re.sub(r"[^A-Za-z0-9._-]", "", title)


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _operation(route: DocumentedRoute, components: _Components) -> dict[str, Any]:
    params = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in _PATH_PARAM.findall(route.path)
    ]
    doc = route.doc
    operation: dict[str, Any] = {"operationId": f"{route.method.lower()}{_slug(route.path)}"}
    if doc is None:
        operation["summary"] = f"{route.method} {route.path}"
        operation["responses"] = {"default": {"description": "See the face's documentation."}}
    else:
        operation["summary"] = doc.summary
        operation["tags"] = [doc.tag]
        params += [
            {
                "name": q.name,
                "in": "query",
                "required": False,
                "schema": dict(q.schema),
                "description": q.description,
            }
            for q in doc.query
        ]
        responses: dict[str, Any] = {}
        if doc.html:
            responses["200"] = {
                "description": "A page",
                "content": {"text/html": {"schema": {"type": "string"}}},
            }
        for status, model in doc.responses.items():
            description = _ERROR_STATUSES.get(status, "Error") if status >= 400 else "Success"
            responses[str(status)] = (
                _json(components.ref(model), description)
                if model is not None
                else {"description": "No content"}
            )
        error = components.ref(doc.errors)
        statuses = {429}
        if doc.body is not None or doc.query or params:  # path ids can be malformed too
            statuses |= {400}
        if doc.body is not None:
            statuses |= {415}
        if not route.public:
            statuses |= {401}
        if params and any(p["in"] == "path" for p in params):
            statuses |= {404}
        for status in sorted(statuses):
            responses.setdefault(str(status), _json(error, _ERROR_STATUSES[status]))
        operation["responses"] = responses
        if doc.body is not None:
            operation["requestBody"] = {
                "required": False,
                "content": {"application/json": {"schema": components.request_ref(doc.body)}},
            }
    if params:
        operation["parameters"] = params
    if not route.public:
        operation["security"] = [{"bearer": []}]
    return operation


def _slug(path: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", path).rstrip("_")


def document(server_url: str) -> dict[str, Any]:
    components = _Components()
    paths: dict[str, dict[str, Any]] = {}
    for route in ROUTES:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route, components)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Herald",
            "version": "1.0.0",
            "description": "Notifications API: notification handlers, events and their deliveries, "
            "plus the PaaS-style notifiers and app-distribution-style notifications faces. Request bodies "
            "are JSON here; the primary face also takes the same fields as form data.",
        },
        "servers": [{"url": server_url}],
        "paths": paths,
        "components": {
            "schemas": components.schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "description": "API key"}},
        },
    }


@api_route(bp, "/openapi.json", methods=["GET"], public=True)
def openapi(call: Call) -> Response:
    from chalicelib.api.pagination import base_url

    return json_response(document(base_url(call.request)))
