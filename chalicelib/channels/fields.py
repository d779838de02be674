"""What a channel's settings model is made of: its base class and the kinds of field.

A channel declares its settings in `<type>_settings.py`, a module apart from its sending
code, so that the request models (built from every channel's settings when the app
starts) import no channel's rendering or sending code. Every setting is a string on the
wire and in the store; a field's kind says how it is checked and shown:

- `HttpUrl`: an absolute http(s) URL, checked for its shape here and, in the services,
  against the SSRF policy (`safe_http.check_target`, which may look the host up);
- `Credential`: a secret (`SecretStr`), answered masked;
- `EmailAddresses`: one or more syntactically valid addresses, separated by commas (kept
  as "a@example.com, b@example.com": stripped, without repeats, in the given order);
- a field with a default is optional (display-only labels); any other is required.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr

from chalicelib.models.addresses import check_email_list

MAX_URL_LENGTH = 2048


def check_http_url(value: str) -> str:
    """An absolute http(s) URL with a host, kept exactly as given."""
    if len(value) > MAX_URL_LENGTH:
        raise ValueError(f"must be at most {MAX_URL_LENGTH} characters")
    if any(c.isspace() for c in value):
        raise ValueError("must not contain whitespace")
    try:
        parts = urlsplit(value)
        port = parts.port  # raises on a malformed port
    except ValueError as exc:
        raise ValueError(f"is not a valid URL ({exc})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an absolute http:// or https:// URL")
    if port == 0:
        raise ValueError("has an invalid port")
    return value


class _UrlMark:
    """Marks a URL field in its metadata, for the save-time SSRF policy to find it."""


URL_MARK = _UrlMark()

HttpUrl = Annotated[str, AfterValidator(check_http_url), URL_MARK]
Credential = Annotated[SecretStr, Field(min_length=1, max_length=256)]
EmailAddresses = Annotated[str, Field(max_length=2600), AfterValidator(check_email_list)]


class ChannelSettings(BaseModel):
    """A channel's settings, declared once: never built as a model (`defer_build`), its
    fields are what the flat request and settings models of `models.handlers` take."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, defer_build=True)
    type_name: ClassVar[str]
    """The handler type, as clients name it."""

    @classmethod
    def required_fields(cls) -> tuple[str, ...]:
        return tuple(name for name, info in cls.model_fields.items() if info.is_required())

    @classmethod
    def optional_fields(cls) -> tuple[str, ...]:
        return tuple(name for name, info in cls.model_fields.items() if not info.is_required())

    @classmethod
    def url_fields(cls) -> tuple[str, ...]:
        return tuple(name for name, info in cls.model_fields.items() if URL_MARK in info.metadata)

    @classmethod
    def secret_fields(cls) -> tuple[str, ...]:
        return tuple(name for name, info in cls.model_fields.items() if info.annotation is SecretStr)

    @classmethod
    def request_field(cls, name: str) -> Any:
        """The field as the flat request models take it: a string with the same checks
        (a credential's too: it is stored as given), absent by default."""
        return Annotated[(str, *cls.model_fields[name].metadata)] | None, None
