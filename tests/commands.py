"""Commands from the primary face's flat bodies, for tests that set handlers up through the services."""

from __future__ import annotations

from typing import Any

from chalicelib.models.commands import CreateHandler, UpdateHandler, fields_from
from chalicelib.models.handlers import HANDLER_FIELDS


def create_command(body: dict[str, Any]) -> CreateHandler:
    return CreateHandler.model_validate(fields_from(body, HANDLER_FIELDS))


def update_command(body: dict[str, Any]) -> UpdateHandler:
    return UpdateHandler.model_validate(fields_from(body, HANDLER_FIELDS))
