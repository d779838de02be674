"""JSON from strangers: request bodies and ingest messages, read so that nothing in them
can crash the decoder or reach DynamoDB in a form it refuses.

Every refusal is an InvalidInput that names the field path (`type_data.big`,
`items.0.name`), so each face can show it in its own error shape.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal, DecimalException
from typing import Any

from chalicelib.errors import InvalidInput

MAX_DEPTH = 32
"""DynamoDB stores documents nested at most 32 levels deep; a body deeper than that could
never be stored, and refusing it before decoding keeps the decoder off its recursion limit."""

_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_NUMBER_RULE = "DynamoDB numbers have at most 38 digits and magnitudes from 1e-130 to below 1e126"


def loads(raw: bytes | str) -> Any:
    """Decode JSON text, refusing too-deep nesting, NaN/Infinity and unstorable values."""
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    _check_depth(data)
    try:
        value = json.loads(data, parse_constant=_refuse_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput(None, f"the body is not valid JSON: {exc}") from None
    problems = list(unstorable(value))
    if problems:
        raise InvalidInput.of(problems)
    return value


def _check_depth(data: bytes) -> None:
    """Count bracket nesting outside strings without decoding anything."""
    if data.count(b"[") + data.count(b"{") <= MAX_DEPTH:
        return
    brackets = _STRINGS.sub(b"", data).translate(None, _NOT_BRACKETS)
    depth = 0
    for byte in brackets:
        depth += 1 if byte in b"[{" else -1
        if depth > MAX_DEPTH:
            raise InvalidInput(None, f"the JSON body is nested deeper than {MAX_DEPTH} levels")


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def unstorable(value: Any, path: str = "") -> Any:
    """Yield (field path, problem) for every number DynamoDB cannot hold exactly, every
    string that is not valid Unicode text (a lone surrogate such as \\ud800) and every
    field name DynamoDB refuses (empty, or not text)."""
    if isinstance(value, str):
        if not _is_text(value):
            yield _problem(path, "must be valid Unicode text (it contains a lone surrogate)")
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, int | float):
        if not storable_number(value):
            yield _problem(path, f"the number {_short(value)} cannot be stored ({_NUMBER_RULE})")
    elif isinstance(value, dict):
        for key, item in value.items():
            name = f"{path}.{key}" if path else str(key)
            if not key or not _is_text(key):
                yield _problem(path, "field names must be non-empty Unicode text (no lone surrogates)")
                continue
            yield from unstorable(item, name)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from unstorable(item, f"{path}.{index}" if path else str(index))


def storable_number(value: int | float) -> bool:
    """What boto3's serializer takes (38 digits) within DynamoDB's range (below 1e126)."""
    from boto3.dynamodb.types import DYNAMODB_CONTEXT

    try:
        number = DYNAMODB_CONTEXT.create_decimal(Decimal(repr(value)) if isinstance(value, float) else value)
    except DecimalException:
        return False
    return bool(number.is_zero() or -130 <= number.adjusted() <= 125)


def _is_text(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _short(value: int | float) -> str:
    text = repr(value)
    return text if len(text) <= 24 else f"{text[:10]}...({len(text)} digits)"


def _problem(path: str, message: str) -> tuple[str | None, str]:
    return (path or None, message)
