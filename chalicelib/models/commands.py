"""The services' commands: what creating or changing a handler asks, in the domain's names.

Every face parses its own request model, then builds one of these; its field names never
reach the services. A face names the domain's fields in its own terms with one table,
domain field -> face field (nested fields dotted: `settings.webhook`,
`subscription.app`), used to build the command (`fields_from`) and to rename the
services' refusals (`chalicelib.errors.InvalidInput.renamed`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from chalicelib.channels import SETTINGS
from chalicelib.models.events import event_type

if TYPE_CHECKING:
    HandlerType = str
else:  # mypy cannot follow a Literal built at run time
    HandlerType = Literal[tuple(SETTINGS)]

RateLimit = Annotated[float, Field(ge=0, le=1000)]
"""Messages a second a handler's destination takes; 0: the platform's default."""
_COMMAND = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True, defer_build=True)


def known_event_ids(items: list[str]) -> list[str]:
    """Event type names or ids as ids, once each; an unknown one is refused."""
    ids: list[str] = []
    for item in items:
        found = event_type(item)
        if found is None:
            raise ValueError(f"unknown event type {item!r}; see GET /v1/event_types")
        if found.id not in ids:
            ids.append(found.id)
    return ids


class Subscription(BaseModel):
    """Which events a handler receives; None leaves a field as it is ("" for app: every app)."""

    model_config = _COMMAND

    app: str | None = None
    send_all_events: bool | None = None
    send_all_alerts: bool | None = None
    selected_event_ids: list[str] | None = None

    @field_validator("selected_event_ids")
    @classmethod
    def _known_events(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else known_event_ids(value)

    def given(self) -> dict[str, Any]:
        """The fields the command sets, as the stored handler names them."""
        return self.model_dump(exclude_none=True)


class CreateHandler(BaseModel):
    """Create a handler. `awaiting_setup`: the type's required settings may come later (it
    receives nothing until then); `uuid_id`: the PaaS face answers its id as a UUID."""

    model_config = _COMMAND

    type: HandlerType
    name: str = Field(min_length=1, max_length=128)
    settings: dict[str, str] = Field(default_factory=dict)
    enabled: bool = True
    subscription: Subscription = Subscription()
    rate_limit_per_second: RateLimit | None = None
    awaiting_setup: bool = False
    uuid_id: bool = False


class UpdateHandler(BaseModel):
    """Change the given fields of a handler; settings are merged, or replace the old ones
    when the type changes (then the new type's required settings must all be given)."""

    model_config = _COMMAND

    type: HandlerType | None = None
    name: str | None = Field(default=None, min_length=1, max_length=128)
    settings: dict[str, str] = Field(default_factory=dict)
    enabled: bool | None = None
    subscription: Subscription = Subscription()
    rate_limit_per_second: RateLimit | None = None
    """0 goes back to the platform's default."""


def fields_from(values: Mapping[str, Any], names: Mapping[str, str]) -> dict[str, Any]:
    """A command's fields from a face's values, by the face's table (domain field -> face
    field): the values it names, nested as the command nests them."""
    fields: dict[str, Any] = {}
    for domain, face in names.items():
        if face in values:
            group, _, leaf = domain.rpartition(".")
            (fields.setdefault(group, {}) if group else fields)[leaf] = values[face]
    return fields
