"""In-memory fakes of Herald's stores, for tests only (chalicelib never imports them)."""

from tests.fakes.stores import memory_stores

__all__ = ["memory_stores"]
