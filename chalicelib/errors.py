"""Domain errors and the one place that turns them into HTTP answers."""

from __future__ import annotations

from typing import Any


class HeraldError(Exception):
    """An error the client caused or must see; carries its HTTP status."""

    status = 400
    title = "Bad request"

    def __init__(self, detail: str, *, field: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"status": self.status, "title": self.title, "detail": self.detail}
        if self.field is not None:
            error["field"] = self.field
        return {"errors": [error]}


class InvalidInput(HeraldError):
    status = 400
    title = "Invalid input"

    def __init__(self, problems: list[tuple[str | None, str]]) -> None:
        first_field, first_message = problems[0]
        super().__init__(first_message, field=first_field)
        self.problems = problems

    def body(self) -> dict[str, Any]:
        errors: list[dict[str, Any]] = []
        for field, message in self.problems:
            error: dict[str, Any] = {"status": self.status, "title": self.title, "detail": message}
            if field is not None:
                error["field"] = field
            errors.append(error)
        return {"errors": errors}


class Unauthorized(HeraldError):
    status = 401
    title = "Unauthorized"


class NotFound(HeraldError):
    status = 404
    title = "Not found"


class Conflict(HeraldError):
    status = 409
    title = "Conflict"


class UnsupportedMediaType(HeraldError):
    status = 415
    title = "Unsupported media type"


class InternalError(HeraldError):
    """Our fault; the detail never carries the cause (it is in the logs)."""

    status = 500
    title = "Internal error"
