"""The in-app face: the inbox (`/notifications`) and Web Push subscribers (`/push-subscribers`)."""

from __future__ import annotations

from typing import Any

from chalice.app import Blueprint, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator

from chalicelib import clock
from chalicelib.api.http import Call, api_route, json_response, query_param
from chalicelib.api.pagination import page_request, paginated
from chalicelib.channels.fields import check_http_url
from chalicelib.errors import InvalidInput, NotFound
from chalicelib.models import inbox, push
from chalicelib.services import parse

bp = Blueprint(__name__)

P256_POINT_BYTES = 65
AUTH_SECRET_BYTES = 16


# --- request bodies -------------------------------------------------------------------


class PushKeys(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    p256dh: str = Field(max_length=128)
    auth: str = Field(max_length=64)

    @field_validator("p256dh")
    @classmethod
    def _point(cls, value: str) -> str:
        """base64url of an uncompressed P-256 point that is on the curve."""
        from cryptography.hazmat.primitives.asymmetric import ec

        raw = _decoded(value)
        if len(raw) != P256_POINT_BYTES or raw[0] != 0x04:
            raise ValueError("must be a base64url uncompressed P-256 public key (65 bytes)")
        try:
            ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)
        except ValueError:
            raise ValueError("is not a point on the P-256 curve") from None
        return value.rstrip("=")

    @field_validator("auth")
    @classmethod
    def _secret(cls, value: str) -> str:
        if len(_decoded(value)) != AUTH_SECRET_BYTES:
            raise ValueError("must be a base64url 16-byte authentication secret")
        return value.rstrip("=")


class PushSubscriptionIn(BaseModel):
    """A browser's `PushSubscription.toJSON()`; fields browsers may add are ignored."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    endpoint: str
    keys: PushKeys
    expiration_time: float | None = Field(default=None, alias="expirationTime", ge=0, le=2**53)

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, value: str) -> str:
        """An absolute https URL that is not in a private network (http too when private
        targets are allowed, for local development)."""
        from chalicelib.delivery.safe_http import check_target
        from chalicelib.settings import get_settings

        check_http_url(value)
        allow_private = get_settings().allow_private_targets
        if not value.lower().startswith("https://") and not allow_private:
            raise ValueError("must be an https:// URL")
        check_target(value, allow_private=allow_private)
        return value

    @field_validator("expiration_time")
    @classmethod
    def _future(cls, value: float | None) -> float | None:
        if value is not None and value <= clock.now().timestamp() * 1000:
            raise ValueError("is in the past: the subscription has expired")
        return value


def _decoded(value: str) -> bytes:
    from chalicelib.vapid import b64url_decode

    try:
        return b64url_decode(value)
    except ValueError:
        raise ValueError("is not base64url") from None


# --- the inbox ------------------------------------------------------------------------


def _status(raw: str | None) -> inbox.Status | None:
    if raw is None or raw == "":
        return None
    for status in inbox.STATUSES:
        if raw == status:
            return status
    raise InvalidInput("status", f"must be one of {', '.join(inbox.STATUSES)}, not {raw!r}")


def _notification_id(raw: str) -> str:
    if not inbox.is_notification_id(raw):
        raise NotFound(f"notification {raw!r} not found")
    return raw


def _with_query(links: dict[str, Any], extra: str) -> dict[str, Any]:
    return {name: f"{url}&{extra}" if url else url for name, url in links.items()}


@api_route(bp, "/notifications", methods=["GET"])
def list_notifications(call: Call) -> Response:
    """Unread first, then read, newest first; `?status=unread|read` keeps one of them.
    meta also counts the unread and read notifications."""
    page = page_request(call.request)
    status = _status(query_param(call.request, "status"))
    result = call.stores.inbox.list_page(call.account, status, page.page, page.per_page, now=clock.now())
    data = [n.public() for n in result.notifications]
    body = paginated(call.request, data, result.total, page)
    body["meta"]["unread"] = result.counts.unread
    body["meta"]["read"] = result.counts.read
    if status is not None:
        body["links"] = _with_query(body["links"], f"status={status}")
    return json_response(body)


@api_route(bp, "/notifications/{notification_id}/read", methods=["POST"])
def mark_read(call: Call, notification_id: str) -> Response:
    found = call.stores.inbox.mark_read(call.account, _notification_id(notification_id), clock.now())
    if found is None:
        raise NotFound(f"notification {notification_id!r} not found")
    return json_response({"data": found.public()})


# --- push subscribers -----------------------------------------------------------------


def _subscriber_id(raw: str) -> str:
    if not push.is_subscriber_id(raw):
        raise NotFound(f"push subscriber {raw!r} not found")
    return raw


@api_route(bp, "/push-subscribers", methods=["POST"])
def create_subscriber(call: Call) -> Response:
    """Register a browser's subscription; the same endpoint again returns the same id."""
    request: PushSubscriptionIn = parse(PushSubscriptionIn, call.body())
    expiration = int(request.expiration_time) if request.expiration_time is not None else None
    subscriber = call.stores.push.save(
        call.account,
        endpoint=request.endpoint,
        p256dh=request.keys.p256dh,
        auth=request.keys.auth,
        expiration_time=expiration,
        now=clock.now(),
    )
    return json_response({"data": {"id": subscriber.id}}, 201)


@api_route(bp, "/push-subscribers/{subscriber_id}", methods=["GET"])
def get_subscriber(call: Call, subscriber_id: str) -> Response:
    found = call.stores.push.get(call.account, _subscriber_id(subscriber_id))
    if found is None:
        raise NotFound(f"push subscriber {subscriber_id!r} not found")
    return json_response({"data": found.public()})


@api_route(bp, "/push-subscribers/{subscriber_id}", methods=["DELETE"])
def delete_subscriber(call: Call, subscriber_id: str) -> Response:
    if not call.stores.push.delete(call.account, _subscriber_id(subscriber_id)):
        raise NotFound(f"push subscriber {subscriber_id!r} not found")
    return Response(body="", status_code=204)
