"""The account's operational webhook (`/v1/operational-webhook`): where Herald posts its
operational events (a handler disabled, a delivery exhausted, a handler recovered),
signed per Standard Webhooks like any webhook. See `chalicelib.operational`."""

from __future__ import annotations

from chalice.app import Blueprint, Response
from pydantic import BaseModel, ConfigDict, field_validator

from chalicelib import operational
from chalicelib.api.docs import RouteDoc
from chalicelib.api.http import Call, api_route, json_response
from chalicelib.channels.fields import check_http_url
from chalicelib.models.api import Data, ErrorBody
from chalicelib.models.handlers import Handler, mask_secret
from chalicelib.services import parse

bp = Blueprint(__name__)
TAG = "operational webhook"
PATH = "/v1/operational-webhook"


class OperationalWebhookIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    url: str

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return check_http_url(value)


class OperationalWebhookOut(BaseModel):
    url: str
    secret: str
    """Whole in the answer of the registration that made it, masked everywhere else."""
    is_enabled: bool
    disabled_reason: str | None
    created_at: str
    updated_at: str

    @classmethod
    def of(cls, webhook: Handler, secret: str | None = None) -> OperationalWebhookOut:
        return cls(
            url=webhook.settings["webhook"],
            secret=secret or mask_secret(webhook.signing_secret or ""),
            is_enabled=webhook.is_enabled,
            disabled_reason=webhook.disabled_reason,
            created_at=webhook.created_at.isoformat(timespec="milliseconds"),
            updated_at=webhook.updated_at.isoformat(timespec="milliseconds"),
        )


def _answer(webhook: Handler, secret: str | None = None, status: int = 200) -> Response:
    return json_response({"data": OperationalWebhookOut.of(webhook, secret).model_dump()}, status)


@api_route(
    bp,
    PATH,
    methods=["PUT"],
    doc=RouteDoc(
        "Register (or repoint and enable) the account's operational webhook; the first "
        "registration answers its signing secret once",
        TAG,
        {200: Data[OperationalWebhookOut], 201: Data[OperationalWebhookOut]},
        body=OperationalWebhookIn,
    ),
)
def put_operational_webhook(call: Call) -> Response:
    request: OperationalWebhookIn = parse(OperationalWebhookIn, call.body())
    registered = operational.register_webhook(call.stores, call.account, request.url)
    return _answer(registered.webhook, registered.secret, 201 if registered.secret else 200)


@api_route(
    bp,
    PATH,
    methods=["GET"],
    doc=RouteDoc(
        "The account's operational webhook (secret masked)",
        TAG,
        {200: Data[OperationalWebhookOut], 404: ErrorBody},
    ),
)
def get_operational_webhook(call: Call) -> Response:
    return _answer(operational.webhook_of(call.stores, call.account))


@api_route(
    bp,
    PATH + "/rotate-secret",
    methods=["POST"],
    doc=RouteDoc(
        "Rotate the operational webhook's signing secret (answered once; the old one keeps signing for 24 h)",
        TAG,
        {200: Data[OperationalWebhookOut], 404: ErrorBody},
    ),
)
def rotate_operational_webhook_secret(call: Call) -> Response:
    webhook, secret = operational.rotate_webhook_secret(call.stores, call.account)
    return _answer(webhook, secret)


@api_route(
    bp,
    PATH,
    methods=["DELETE"],
    doc=RouteDoc("Remove the account's operational webhook", TAG, {204: None, 404: ErrorBody}),
)
def delete_operational_webhook(call: Call) -> Response:
    operational.remove_webhook(call.stores, call.account)
    return Response(body="", status_code=204)
