"""Generic webhook: the seed 001 event JSON, signed per Standard Webhooks."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalicelib.channels.base import Channel, OutboundRequest, json_request
from chalicelib.delivery.signing import signature_headers
from chalicelib.models.events import Event
from chalicelib.models.handlers import Handler

if TYPE_CHECKING:
    from chalicelib.delivery.context import DeliveryContext


def message_id(event: Event, handler: Handler) -> str:
    """Stable across retries of one event x handler, so receivers can deduplicate."""
    return f"msg_{event.id}_{handler.id}"


class WebhookChannel(Channel):
    name = "webhook"
    destination_setting = "webhook"

    def render(self, event: Event, handler: Handler, context: DeliveryContext) -> OutboundRequest:
        now = context.now()
        request = json_request(handler.settings["webhook"], event.payload())
        headers = signature_headers(
            handler.signing_secrets(now), message_id(event, handler), int(now.timestamp()), request.body
        )
        return OutboundRequest(request.url, request.body, {**request.headers, **headers})


CHANNEL = WebhookChannel()
