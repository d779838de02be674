"""Every store, bundled: what services, the worker and the faces are given.

`get_stores()` builds the DynamoDB bundle once per container (per table name: tests switch
tables between runs); tests build a bundle of in-memory fakes instead.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from chalicelib.settings import get_settings
from chalicelib.storage.accounts import (
    ApiKeyStore,
    AppStore,
    DynamoApiKeyStore,
    DynamoAppStore,
    DynamoPortalSessionStore,
    DynamoRateStore,
    PortalSessionStore,
    RateStore,
)
from chalicelib.storage.app_events import AppEventStore, DynamoAppEventStore
from chalicelib.storage.confirmations import ConfirmationStore, DynamoConfirmationStore
from chalicelib.storage.deliveries import DeliveryStore, DynamoDeliveryStore
from chalicelib.storage.destinations import DestinationStore, DynamoDestinationStore
from chalicelib.storage.fan_outs import DynamoFanOutStore, FanOutStore
from chalicelib.storage.handlers import DynamoHandlerStore, HandlerStore
from chalicelib.storage.inbox import DynamoInboxStore, InboxStore
from chalicelib.storage.push import DynamoPushStore, PushStore
from chalicelib.storage.table import Table


@dataclass(frozen=True)
class Stores:
    api_keys: ApiKeyStore
    portal_sessions: PortalSessionStore
    rates: RateStore
    apps: AppStore
    handlers: HandlerStore
    deliveries: DeliveryStore
    confirmations: ConfirmationStore
    inbox: InboxStore
    push: PushStore
    app_events: AppEventStore
    fan_outs: FanOutStore
    destinations: DestinationStore


def dynamo_stores(table_name: str, client: Any = None) -> Stores:
    """Every store on one DynamoDB table (through `client`, if given)."""
    table = Table(table_name, client)
    return Stores(
        api_keys=DynamoApiKeyStore(table),
        portal_sessions=DynamoPortalSessionStore(table),
        rates=DynamoRateStore(table),
        apps=DynamoAppStore(table),
        handlers=DynamoHandlerStore(table),
        deliveries=DynamoDeliveryStore(table),
        confirmations=DynamoConfirmationStore(table),
        inbox=DynamoInboxStore(table),
        push=DynamoPushStore(table),
        app_events=DynamoAppEventStore(table),
        fan_outs=DynamoFanOutStore(table),
        destinations=DynamoDestinationStore(table),
    )


_built: dict[str, Stores] = {}
_lock = threading.Lock()


def get_stores() -> Stores:
    """The container's stores on the configured table, built on first use."""
    name = get_settings().table_name
    found = _built.get(name)
    if found is None:
        with _lock:
            found = _built.setdefault(name, dynamo_stores(name))
    return found
