"""Domain errors and the one place that turns them into HTTP answers."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, NamedTuple


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


class Problem(NamedTuple):
    """One refused field (None: the request as a whole) and what is wrong with it."""

    field: str | None
    message: str

    @property
    def detail(self) -> str:
        """The message as answers show it: prefixed with the field it names."""
        return f"{self.field}: {self.message}" if self.field else self.message


class InvalidInput(HeraldError):
    """A refused request; its fields are named in the raiser's terms (the domain's in the
    services), and a face renames them to its own with `renamed`."""

    status = 400
    title = "Invalid input"

    def __init__(self, field: str | None, message: str) -> None:
        self._set([Problem(field, message)])

    @classmethod
    def of(cls, problems: Iterable[tuple[str | None, str]]) -> InvalidInput:
        """One error naming several problems (at least one)."""
        error = cls.__new__(cls)
        error._set([Problem(field, message) for field, message in problems])
        return error

    def _set(self, problems: list[Problem]) -> None:
        super().__init__(problems[0].detail, field=problems[0].field)
        self.problems = problems

    def renamed(self, names: Mapping[str, str]) -> InvalidInput:
        """The same problems with their fields renamed by `names` (others kept)."""
        return InvalidInput.of(
            (names.get(p.field, p.field) if p.field else None, p.message) for p in self.problems
        )

    def body(self) -> dict[str, Any]:
        errors: list[dict[str, Any]] = []
        for problem in self.problems:
            error: dict[str, Any] = {"status": self.status, "title": self.title, "detail": problem.detail}
            if problem.field is not None:
                error["field"] = problem.field
            errors.append(error)
        return {"errors": errors}


@contextmanager
def fields_named(names: Mapping[str, str]) -> Iterator[None]:
    """Refusals raised inside name their fields by `names`: a face's table of the domain's
    fields (domain field -> the face's)."""
    try:
        yield
    except InvalidInput as error:
        raise error.renamed(names) from None


class Unauthorized(HeraldError):
    status = 401
    title = "Unauthorized"


class Forbidden(HeraldError):
    """The caller is known but may not do this (a portal token making portal links)."""

    status = 403
    title = "Forbidden"


class NotFound(HeraldError):
    status = 404
    title = "Not found"


class Conflict(HeraldError):
    status = 409
    title = "Conflict"


class Contended(HeraldError):
    """DynamoDB kept cancelling a write for contention or throttling: nothing was
    written, and the same request may simply be sent again."""

    status = 503
    title = "Service unavailable"


class QueueUnavailable(HeraldError):
    """SQS refused messages: the publish may be sent again with the same event id."""

    status = 503
    title = "Service unavailable"


class UnsupportedMediaType(HeraldError):
    status = 415
    title = "Unsupported media type"


class InternalError(HeraldError):
    """Our fault; the detail never carries the cause (it is in the logs)."""

    status = 500
    title = "Internal error"
