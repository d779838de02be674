"""The portal in Debian's Chromium on a local stack of its own: what its first load weighs
(bytes of every response, headers included) and how long a list of 1,000 handlers takes to
show, from navigation to the rendered table; and what its files add to the Lambda zip."""

from __future__ import annotations

import io
import statistics
import tempfile
import time
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HANDLERS = 1000
ROUNDS = 3


def _zipped_portal_bytes() -> tuple[int, int]:
    """The portal's files (and its route module), raw and deflated as in the Lambda zip."""
    from chalicelib.api import portal

    files = [*sorted(portal.FILES.iterdir()), Path(portal.__file__)]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in files:
            archive.write(path, path.name)
    return sum(path.stat().st_size for path in files), len(buffer.getvalue())


def _first_load(browser: Any, url: str, shown: str) -> tuple[float, int]:
    """Seconds until `shown` is on the page, and the bytes of every response until the
    network is idle, in a fresh context (nothing cached)."""
    context = browser.new_context()
    page = context.new_page()
    sizes: list[int] = []

    def finished(request: Any) -> None:
        measured = request.sizes()
        sizes.append(measured["responseBodySize"] + measured["responseHeadersSize"])

    page.on("requestfinished", finished)
    started = time.perf_counter()
    page.goto(url)
    page.get_by_text(shown).wait_for(timeout=120_000)
    elapsed = time.perf_counter() - started
    page.wait_for_load_state("networkidle")
    context.close()
    return elapsed, sum(sizes)


def run() -> dict[str, Any]:
    import boto3
    from playwright.sync_api import sync_playwright

    from bench.pagination import bulk_load, make_handlers
    from bench.support import environment
    from chalicelib import apikeys
    from chalicelib.api.portal import portal_url
    from chalicelib.settings import get_settings
    from chalicelib.storage.stores import get_stores
    from herald_local.chromium import chromium
    from herald_local.harness import StackProcess

    raw, zipped = _zipped_portal_bytes()
    rows: list[dict[str, Any]] = [
        {
            "measure": "portal files (raw / deflated in the zip), KB",
            "value": f"{raw / 1e3:.1f} / {zipped / 1e3:.1f}",
        }
    ]
    with tempfile.TemporaryDirectory(prefix="herald-bench-portal-") as folder:
        stack = StackProcess(Path(folder), {"HERALD_RATE_LIMIT_PER_MINUTE": "0"}).start()
        try:
            with environment(stack.exported()):
                bulk_load(boto3.client("dynamodb"), get_settings().table_name, make_handlers("big", HANDLERS))
                now = datetime.now(UTC)
                empty_link = portal_url(
                    stack.url, apikeys.create_portal_session(get_stores(), "empty", now)[0]
                )
                big_link = portal_url(stack.url, apikeys.create_portal_session(get_stores(), "big", now)[0])
            with sync_playwright() as driver:
                browser = driver.chromium.launch(executable_path=str(chromium()), args=["--no-sandbox"])
                _first_load(browser, empty_link, "0 of 0 handlers")  # warms chalice local's imports
                empty = [_first_load(browser, empty_link, "0 of 0 handlers") for _ in range(ROUNDS)]
                big = [
                    _first_load(browser, big_link, f"{HANDLERS} of {HANDLERS} handlers")
                    for _ in range(ROUNDS)
                ]
                browser.close()
        finally:
            stack.stop()
    rows += [
        {"measure": "first load, empty account, KB", "value": round(empty[0][1] / 1e3, 1)},
        {
            "measure": "first load, empty account, ms (median)",
            "value": round(statistics.median(e for e, _ in empty) * 1e3),
        },
        {"measure": f"first load, {HANDLERS} handlers, KB", "value": round(big[0][1] / 1e3, 1)},
        {
            "measure": f"{HANDLERS} handlers listed, ms (median)",
            "value": round(statistics.median(e for e, _ in big) * 1e3),
        },
    ]
    return {
        "rows": rows,
        "portal_zip_bytes": zipped,
        "first_load_bytes_empty": empty[0][1],
        "first_load_bytes_1000": big[0][1],
        "list_1000_seconds": [round(e, 3) for e, _ in big],
    }
