"""`chalice local`, as `make dev` runs it, closer to how API Gateway and Herald answer.

Four differences of chalice's local server are put right here, in the local stack only
(none of this is in the Lambda package):
- it applies the stage's environment variables over its own environment, so a developer
  could not change a setting; here every HERALD_* variable of the environment wins (the
  stack passes the stage's config under the caller's, see herald_local.stack);
- its listen backlog is socketserver's 5: twenty clients connecting at once got connections
  reset, where API Gateway takes them all; it is now LISTEN_BACKLOG;
- it hands the app only the first of a repeated header, so a second Authorization header
  would go unseen; it now joins repeated headers with commas, as RFC 9110 lets a recipient,
  and Herald refuses the joined credentials;
- for a path no route matches it answers 403 with the caller's Authorization header in the
  body; it now answers Herald's JSON 404, without it (Herald's own catch-all routes answer
  every path of up to `fallback.MAX_SEGMENTS` segments before this is reached).

Run as `python -m herald_local.chalice_local local --host ... --port ...`.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import MutableMapping
from typing import Any

from chalice import local
from chalice.cli import main
from chalice.cli.factory import CLIFactory

from chalicelib import logs
from herald_local.log_lines import ReadableFormatter

_NOT_FOUND = json.dumps(
    {"errors": [{"status": 404, "title": "Not found", "detail": "no route for this path"}]}
).encode()


LISTEN_BACKLOG = 128


class RouteNotFound(local.LocalGatewayException):
    CODE = 404


def _accept_bursts() -> None:
    local.ThreadedHTTPServer.request_queue_size = LISTEN_BACKLOG


def _environment_wins() -> None:
    load = CLIFactory.load_chalice_app

    def load_under_environment(
        self: Any, environment_variables: MutableMapping[str, str] | None = None, *args: Any, **kwargs: Any
    ) -> Any:
        if environment_variables is not None:
            environment_variables = {
                name: value
                for name, value in environment_variables.items()
                if not (name.startswith("HERALD_") and name in os.environ)
            }
        return load(self, environment_variables, *args, **kwargs)

    CLIFactory.load_chalice_app = load_under_environment  # type: ignore[method-assign]


def _join_repeated_headers() -> None:
    parse = local.ChaliceRequestHandler._parse_payload

    def parse_joining(self: Any) -> tuple[dict[str, Any], bytes | None]:
        headers, body = parse(self)
        for name in self.headers:
            values = self.headers.get_all(name)
            if len(values) > 1:
                headers[name] = ", ".join(values)
        return headers, body

    local.ChaliceRequestHandler._parse_payload = parse_joining  # type: ignore[method-assign]


def _answer_unknown_paths_with_404() -> None:
    handle = local.LocalGateway.handle_request

    def handle_or_404(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return handle(self, *args, **kwargs)
        except local.ForbiddenError:  # raised only for a path no route matches
            raise RouteNotFound({"Content-Type": "application/json"}, _NOT_FOUND) from None

    local.LocalGateway.handle_request = handle_or_404  # type: ignore[method-assign]


if __name__ == "__main__":
    logs.configure(ReadableFormatter(), force=True)
    logging.getLogger("botocore").setLevel(logging.WARNING)  # chalice logs INFO: "Found credentials..."
    _accept_bursts()
    _environment_wins()
    _join_repeated_headers()
    _answer_unknown_paths_with_404()
    sys.exit(main())
