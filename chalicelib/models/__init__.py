"""Pydantic models at Herald's edges: requests, responses and stored items."""
