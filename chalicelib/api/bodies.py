"""Request bodies: JSON, urlencoded forms and multipart/form-data, read into one dict of fields."""

from __future__ import annotations

import io
import json
from typing import Any
from urllib.parse import parse_qsl

from chalice.app import Request

from chalicelib.errors import InvalidInput, UnsupportedMediaType

BODY_TYPES = ["application/json", "application/x-www-form-urlencoded", "multipart/form-data"]
MAX_BODY_BYTES = 256 * 1024


def parse_body(request: Request) -> dict[str, Any]:
    """The request's fields from JSON, a urlencoded form or multipart/form-data alike."""
    raw = request.raw_body or b""
    if isinstance(raw, str):
        raw = raw.encode()
    if len(raw) > MAX_BODY_BYTES:
        raise InvalidInput([(None, f"the body must be at most {MAX_BODY_BYTES} bytes")])
    if not raw.strip():
        return {}
    content_type = request.headers.get("content-type", "application/json")
    mime = content_type.split(";", 1)[0].strip().lower()
    if mime == "application/json":
        return _json_object(raw)
    if mime == "application/x-www-form-urlencoded":
        try:
            pairs = parse_qsl(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
        except UnicodeDecodeError:
            raise InvalidInput([(None, "the form body is not valid UTF-8")]) from None
        return _collect(pairs)
    if mime == "multipart/form-data":
        return _multipart(content_type, raw)
    raise UnsupportedMediaType(f"unsupported Content-Type {mime!r}; send one of {', '.join(BODY_TYPES)}")


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput([(None, f"the body is not valid JSON: {exc}")]) from None
    if not isinstance(body, dict):
        raise InvalidInput([(None, "the JSON body must be an object")])
    return body


def _collect(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Form fields to a dict; a repeated field (or `name[]`) becomes a list."""
    fields: dict[str, Any] = {}
    for name, value in pairs:
        if name.endswith("[]"):
            fields.setdefault(name[:-2], []).append(value)
        elif name in fields:
            previous = fields[name]
            fields[name] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            fields[name] = value
    return fields


def _multipart(content_type: str, raw: bytes) -> dict[str, Any]:
    from python_multipart import parse_form
    from python_multipart.exceptions import FormParserError

    pairs: list[tuple[str, str]] = []
    files: list[str] = []

    def on_field(field: Any) -> None:
        name = (field.field_name or b"").decode("utf-8", "replace")
        pairs.append((name, (field.value or b"").decode("utf-8", "replace")))

    def on_file(file: Any) -> None:
        files.append((file.field_name or b"").decode("utf-8", "replace"))

    headers = {"Content-Type": content_type.encode(), "Content-Length": str(len(raw)).encode()}
    try:
        parse_form(headers, io.BytesIO(raw), on_field, on_file)
    except (FormParserError, ValueError) as exc:
        raise InvalidInput([(None, f"the multipart body could not be parsed: {exc}")]) from None
    if files:
        raise InvalidInput([(files[0], f"{files[0]}: file uploads are not accepted")])
    return _collect(pairs)
