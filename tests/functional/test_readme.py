"""The README's API table lists every route of the OpenAPI document, and nothing else."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

README = Path(__file__).resolve().parents[2] / "README.md"
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
_ROUTE = re.compile(r"`((?:(?:GET|POST|PUT|PATCH|DELETE) )+)(/[^`\s]*)`")


def section(title: str) -> str:
    text = README.read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def table_routes() -> set[tuple[str, str]]:
    rows = [line for line in section("The API").splitlines() if line.startswith("|")]
    routes = set()
    for row in rows:
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        if len(cells) < 2:
            continue
        for methods, path in _ROUTE.findall(cells[1]):
            routes |= {(method, path) for method in methods.split()}
    return routes


def test_the_api_table_lists_every_route_of_the_openapi_document(api: Any) -> None:
    paths = api.http.get("/openapi.json").json_body["paths"]
    documented = {
        (method.upper(), path) for path, item in paths.items() for method in item if method.upper() in METHODS
    }
    listed = table_routes()
    assert sorted(documented - listed) == [], "routes missing from the README's API table"
    assert sorted(listed - documented) == [], "routes in the README's API table that the API does not serve"


def test_try_it_uses_the_ids_the_api_returned() -> None:
    text = section("Two commands")
    block = text[text.index("### Try it") :]
    block = block[block.index("```sh") : block.index("```", block.index("```sh") + 5)]
    assert not re.search(r"/notification-handlers/\d", block), "a literal handler id in Try it"
    assert "$ID" in block
