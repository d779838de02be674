"""Request bodies: JSON, urlencoded forms and multipart/form-data, read into one dict of fields."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from chalice.app import Request

from chalicelib import safe_json
from chalicelib.errors import InvalidInput, UnsupportedMediaType

BODY_TYPES = ["application/json", "application/x-www-form-urlencoded", "multipart/form-data"]
MAX_BODY_BYTES = 256 * 1024


def parse_body(request: Request) -> dict[str, Any]:
    """The request's fields from JSON, a urlencoded form or multipart/form-data alike."""
    raw = request.raw_body or b""
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogatepass")  # a lone surrogate then fails decoding: a 400
    if len(raw) > MAX_BODY_BYTES:
        raise InvalidInput(None, f"the body must be at most {MAX_BODY_BYTES} bytes")
    if not raw.strip():
        return {}
    content_type = request.headers.get("content-type", "application/json")
    mime = content_type.split(";", 1)[0].strip().lower()
    if mime == "application/json":
        return _json_object(raw)
    if mime == "application/x-www-form-urlencoded":
        try:
            text = raw.decode("utf-8")
            pairs = parse_qsl(text, keep_blank_values=True, encoding="utf-8", errors="strict")
        except UnicodeDecodeError:
            raise InvalidInput(None, "the form body is not valid UTF-8") from None
        return _collect(pairs)
    if mime == "multipart/form-data":
        return _multipart(content_type, raw)
    raise UnsupportedMediaType(f"unsupported Content-Type {mime!r}; send one of {', '.join(BODY_TYPES)}")


def _json_object(raw: bytes) -> dict[str, Any]:
    body = safe_json.loads(raw)
    if not isinstance(body, dict):
        raise InvalidInput(None, "the JSON body must be an object")
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
    """Every part must be a named text field and the body must end with its closing
    delimiter: a truncated body would otherwise lose its last fields without a word."""
    from python_multipart.exceptions import FormParserError
    from python_multipart.multipart import FormParser, parse_options_header

    _, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if not boundary:
        raise _malformed("the Content-Type names no boundary")
    pairs: list[tuple[str, str]] = []
    files: list[str] = []
    ended: list[bool] = []

    def on_field(field: Any) -> None:
        pairs.append((_text(field.field_name or b"", "a field name"), _text(field.value or b"", "a field")))

    def on_file(file: Any) -> None:
        files.append(_text(file.field_name or b"", "a field name"))

    parser = FormParser(
        "multipart/form-data", on_field, on_file, on_end=lambda: ended.append(True), boundary=boundary
    )
    try:
        parser.write(raw)
        parser.finalize()
    except (FormParserError, ValueError) as exc:
        raise _malformed(str(exc)) from None
    if not ended:
        raise _malformed("it has no closing delimiter")
    if files:
        raise InvalidInput(files[0], "file uploads are not accepted")
    if any(not name for name, _ in pairs):
        raise _malformed("a part has no field name")
    return _collect(pairs)


def _text(value: bytes, what: str) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput(None, f"the multipart body is malformed: {what} is not valid UTF-8") from None


def _malformed(why: str) -> InvalidInput:
    return InvalidInput(None, f"the multipart body is malformed: {why}")


def without_nulls(body: dict[str, Any]) -> dict[str, Any]:
    """Refuse `null` for fields that cannot be null, instead of taking it for "not given"."""
    nulls = [name for name, value in body.items() if value is None]
    if nulls:
        raise InvalidInput.of(
            (name, "must not be null; leave the field out to keep its value") for name in nulls
        )
    return body
