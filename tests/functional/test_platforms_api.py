"""Seed 000's notification platforms catalog through chalice.test on moto."""

from __future__ import annotations

import re
from typing import Any

import pytest

from chalicelib.channels import SETTINGS

BASE = "/v1/notification_platforms"
OBJECT_ID = re.compile(r"^[0-9a-f]{24}$")
ATTRIBUTES = {"id", "name", "display_name", "logo_url", "available_event_ids", "description"}

# The seed's objects, verbatim.
SEED_SLACK = {
    "id": "5982f145d48c3600273ef089",
    "name": "slack",
    "display_name": "Slack",
    "logo_url": "https://cdn2.scalingo.com/dashboard/assets/images/notification/slack-831fd1b21576dbb3e0037b7211ecfd93.svg",
    "available_event_ids": [
        "5982f139d48c360021b1eb69",
        "59c52a9c7651ce001f62f578",
        "5b28be8e85232200126f373c",
        "5b28bf02aa9a340012832362",
        "5b28bf2485232200126f373e",
    ],
    "description": "Send events to your team thanks to Slack Incoming WebHooks.",
}
SEED_WEBHOOK = {
    "id": "5982f145d48c3600273ef08a",
    "name": "webhook",
    "display_name": "Webhook",
    "logo_url": "https://cdn2.scalingo.com/dashboard/assets/images/notification/webhook-1f16734c1d9b61dff4460d067ab980ec.svg",
    "available_event_ids": [
        "5982f139d48c360021b1eb69",
        "59c52a9c7651ce001f62f578",
        "5b28bf2485232200126f373e",
    ],
    "description": "Send HTTP requests to any target when events happen.",
}
# Ids are part of the contract: clients store them. Pinned so that a change shows here.
IDS = {
    "slack": "5982f145d48c3600273ef089",
    "webhook": "5982f145d48c3600273ef08a",
    "email": "59c52ac27651ce002c1d4620",
    "discord": "37cd5f452098cc7640c5f4e7",
    "telegram": "9d5869494a1063bd1d253ba0",
    "microsoft_teams": "50e2df8a7af2f45a1383ee9e",
    "google_chat": "c8cd5565fa95f23bc8d2ee86",
    "x": "b902c07a9d4e46816c7e02c4",
    "internal_notification": "137fb5668095a422868c31c8",
    "push_subscriber_id": "523da00b32fa4ee980497437",
}
SLACK_FIVE = SEED_SLACK["available_event_ids"]


def get(api: Any, path: str) -> Any:
    """Public routes: no Authorization header at all."""
    answer = api.http.get(path)
    assert answer.headers["Content-Type"] == "application/json"
    return answer


def test_the_list_has_one_platform_per_handler_type_with_exactly_the_seed_attributes(api: Any) -> None:
    answer = get(api, BASE)
    assert answer.status_code == 200
    assert set(answer.json_body) == {"notification_platforms"}
    found = answer.json_body["notification_platforms"]
    assert [p["name"] for p in found] == list(IDS)
    assert sorted(p["name"] for p in found) == sorted(SETTINGS)
    for platform in found:
        assert set(platform) == ATTRIBUTES
        assert platform["id"] == IDS[platform["name"]]
        assert all(isinstance(platform[k], str) and platform[k] for k in ATTRIBUTES - {"available_event_ids"})
        assert platform["logo_url"].startswith(("https://", "data:image/svg+xml,"))


def test_the_seeds_list_example_is_answered_verbatim(api: Any) -> None:
    """Seed 000 (and 001): GET /v1/notification_platforms, its two objects exactly."""
    found = {p["name"]: p for p in get(api, BASE).json_body["notification_platforms"]}
    assert found["slack"] == SEED_SLACK
    assert found["webhook"] == SEED_WEBHOOK


@pytest.mark.parametrize("name", [n for n in IDS if n not in ("slack", "webhook")])
def test_every_other_platform_offers_slacks_five_events(api: Any, name: str) -> None:
    platform = get(api, f"{BASE}/{IDS[name]}").json_body["notification_platform"]
    assert platform["available_event_ids"] == SLACK_FIVE


def test_ids_are_distinct_object_ids(api: Any) -> None:
    ids = [p["id"] for p in get(api, BASE).json_body["notification_platforms"]]
    assert len(set(ids)) == len(ids) == 10
    assert all(OBJECT_ID.match(i) for i in ids)


@pytest.mark.parametrize("name", list(IDS))
def test_get_answers_the_platform_in_its_envelope(api: Any, name: str) -> None:
    answer = get(api, f"{BASE}/{IDS[name]}")
    assert answer.status_code == 200
    assert set(answer.json_body) == {"notification_platform"}
    assert answer.json_body["notification_platform"]["name"] == name
    listed = {p["id"]: p for p in get(api, BASE).json_body["notification_platforms"]}
    assert answer.json_body["notification_platform"] == listed[IDS[name]]


def test_get_answers_the_seeds_slack_example(api: Any) -> None:
    """Seed 000: GET /v1/notification_platforms/5982f145d48c3600273ef089."""
    answer = get(api, f"{BASE}/5982f145d48c3600273ef089")
    assert answer.status_code == 200
    assert answer.json_body == {"notification_platform": SEED_SLACK}


def test_the_seeds_search_example_answers_slack(api: Any) -> None:
    """Seed 000: GET /v1/notification_platforms/search?name=slack."""
    answer = get(api, f"{BASE}/search?name=slack")
    assert answer.status_code == 200
    assert answer.json_body == {"notification_platforms": [SEED_SLACK]}


@pytest.mark.parametrize("platform_id", ["5982f145d48c3600273ef000", "slack", "nope", "0" * 24])
def test_an_unknown_platform_is_404_in_the_paas_shape(api: Any, platform_id: str) -> None:
    answer = get(api, f"{BASE}/{platform_id}")
    assert answer.status_code == 404
    assert answer.json_body == {"resource": "notification_platform", "error": "not found"}


def test_search_is_its_own_route_not_an_id(api: Any) -> None:
    answer = get(api, f"{BASE}/search?name=slack")
    assert answer.status_code == 200
    assert answer.json_body == {
        "notification_platforms": [get(api, f"{BASE}/{IDS['slack']}").json_body["notification_platform"]]
    }


@pytest.mark.parametrize(
    ("query", "names"),
    [("webhook", ["webhook"]), ("SLACK", ["slack"]), (" email ", ["email"]), ("nope", []), ("sla", [])],
)
def test_search_matches_the_whole_name(api: Any, query: str, names: list[str]) -> None:
    answer = get(api, f"{BASE}/search?name={query.replace(' ', '%20')}")
    assert answer.status_code == 200
    assert [p["name"] for p in answer.json_body["notification_platforms"]] == names


@pytest.mark.parametrize("query", ["", "?name=", "?name=%20"])
def test_search_without_a_name_is_422_naming_it(api: Any, query: str) -> None:
    answer = get(api, f"{BASE}/search{query}")
    assert answer.status_code == 422
    assert answer.json_body == {"errors": {"name": ["required, e.g. ?name=slack"]}}


def test_the_catalog_is_public_and_ignores_credentials(api: Any) -> None:
    answer = api.http.get(BASE, headers={"Authorization": "Bearer not-a-key"})
    assert answer.status_code == 200
