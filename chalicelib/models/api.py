"""Shapes shared by the faces' responses: the primary face's errors, pages and ids."""

from __future__ import annotations

from typing import Generic, TypeVar

from pydantic import BaseModel

T = TypeVar("T")

DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S"
"""How the primary face (and the inbox and push faces beside it) writes times: the seeds' format."""


class ErrorItem(BaseModel):
    status: int
    title: str
    detail: str
    field: str | None = None


class ErrorBody(BaseModel):
    """Every error of the primary face: `{"errors": [{status, title, detail, field?}]}`."""

    errors: list[ErrorItem]


class PageMeta(BaseModel):
    page: int
    results_per_page: int
    total: int
    total_pages: int


class PageLinks(BaseModel):
    first: str
    last: str
    next: str | None
    prev: str | None
    self: str


class Page(BaseModel, Generic[T]):
    data: list[T]
    meta: PageMeta
    links: PageLinks


class Data(BaseModel, Generic[T]):
    data: T


class CreatedId(BaseModel):
    id: int
    secret: str | None = None
