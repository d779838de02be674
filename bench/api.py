"""What the API layer costs: a request through the Chalice app against a raw GetItem,
and a Lambda cold start (`import app`) against importing boto3 and making one client.

Both run in one process on DynamoDB Local; the request goes through the real Lambda
entry point with an API Gateway proxy event, so routing, auth, rate limiting,
validation and serialisation are all counted.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.support import environment, local_aws
from chalicelib.models.commands import CreateHandler

RUNS = 200
COLD_RUNS = 7
ACCOUNT = "bench"
ROOT = Path(__file__).resolve().parent.parent
TEST_ONLY = ("moto", "pytest", "_pytest", "hypothesis", "schemathesis", "herald_local", "tests", "bench")


def _event(path: str, handler_id: int, key: str) -> dict[str, Any]:
    return {
        "resource": "/notification-handlers/{handler_id}",
        "path": path,
        "httpMethod": "GET",
        "headers": {"authorization": f"Bearer {key}", "host": "bench.local"},
        "multiValueHeaders": {},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": {"handler_id": str(handler_id)},
        "stageVariables": None,
        "requestContext": {
            "resourcePath": "/notification-handlers/{handler_id}",
            "httpMethod": "GET",
            "path": f"/api{path}",
            "stage": "api",
            "identity": {"sourceIp": "127.0.0.1"},
        },
        "body": None,
        "isBase64Encoded": False,
    }


def _medians_ms(first: Any, second: Any, runs: int) -> tuple[float, float]:
    """Median times of two actions measured alternately, so load changes hit both alike."""
    for _ in range(10):
        first()
        second()
    samples: tuple[list[float], list[float]] = ([], [])
    for _ in range(runs):
        for action, bucket in ((first, samples[0]), (second, samples[1])):
            started = time.perf_counter()
            action()
            bucket.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(samples[0]), 3), round(statistics.median(samples[1]), 3)


def _overhead() -> dict[str, Any]:
    from app import app
    from chalicelib import apikeys, clients, services
    from chalicelib.settings import get_settings
    from chalicelib.storage import keys
    from chalicelib.storage.stores import get_stores
    from chalicelib.storage.table import to_ddb
    from herald_local.bootstrap import ensure_table

    ensure_table(clients.client("dynamodb"), get_settings().table_name)
    stores = get_stores()
    key, _ = apikeys.create_key(stores, ACCOUNT)
    handler = services.create_handler(
        stores,
        ACCOUNT,
        CreateHandler(name="n", type="slack", settings={"slack": "https://hooks.slack.com/x"}),
        "http://b",
    )
    event = _event(f"/notification-handlers/{handler.id}", handler.id, key)
    ddb = clients.client("dynamodb")
    item_key = to_ddb({"PK": keys.account_pk(ACCOUNT), "SK": keys.handler_sk(handler.id)})

    def through_app() -> None:
        answer = app(event, None)
        if answer["statusCode"] != 200:
            raise RuntimeError(answer)

    def raw_get() -> None:
        ddb.get_item(TableName=get_settings().table_name, Key=item_key, ConsistentRead=True)

    rows = []
    for label, limit in (("rate limiting off", "0"), ("rate limiting on", "1000000")):
        with environment({"HERALD_RATE_LIMIT_PER_MINUTE": limit}):
            api, raw = _medians_ms(through_app, raw_get, RUNS)
        rows.append(
            {
                "measure": f"GET handler via app ({label}) / raw GetItem",
                "app_ms": api,
                "raw_ms": raw,
                "ratio": round(api / raw, 2),
            }
        )
    return {"rows": rows}


def _cold(code: str) -> float:
    samples = []
    for _ in range(COLD_RUNS):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, capture_output=True)
        samples.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(samples), 1)


def _cold_start() -> dict[str, Any]:
    app_ms = _cold("import app")
    boto_ms = _cold("import boto3; boto3.client('dynamodb', region_name='us-east-1')")
    probe = subprocess.run(
        [sys.executable, "-c", "import sys, json, app; print(json.dumps(sorted(sys.modules)))"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    loaded = json.loads(probe.stdout)
    leaked = sorted({m.split(".")[0] for m in loaded if m.split(".")[0] in TEST_ONLY})
    return {
        "rows": [
            {
                "measure": "cold start: import app / import boto3 + client",
                "app_ms": app_ms,
                "raw_ms": boto_ms,
                "ratio": round(app_ms / boto_ms, 2),
            }
        ],
        "test_only_modules_imported": leaked,
        "boto3_imported_by_app": "boto3" in loaded,
    }


def run() -> dict[str, Any]:
    with local_aws(), environment({"HERALD_TABLE": "herald-bench-api"}):
        overhead = _overhead()
    cold = _cold_start()
    ratio, limited_ratio = (row["ratio"] for row in overhead["rows"])
    return {
        "rows": overhead["rows"] + cold["rows"],
        "test_only_modules_imported": ",".join(cold["test_only_modules_imported"]) or "none",
        "checks": {
            f"API overhead (rate limiting off) <= 1.25 x raw GetItem: {ratio}": ratio <= 1.25,
            f"API overhead (rate limiting on) <= 1.3 x raw GetItem: {limited_ratio}": limited_ratio <= 1.3,
            "cold start <= 1.3 x boto3 + one client": cold["rows"][0]["ratio"] <= 1.3,
            "no test-only module imported by app": not cold["test_only_modules_imported"],
        },
    }
