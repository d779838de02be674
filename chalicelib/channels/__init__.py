"""One module per handler type behind the Channel interface; `get_channel` imports on first use."""

from __future__ import annotations

import importlib

from chalicelib.channels.base import Channel

_loaded: dict[str, Channel] = {}


def get_channel(handler_type: str) -> Channel:
    """The channel for a handler type; its module is `chalicelib.channels.<type>`."""
    channel = _loaded.get(handler_type)
    if channel is None:
        module = importlib.import_module(f"chalicelib.channels.{handler_type}")
        channel = module.CHANNEL
        _loaded[handler_type] = channel
    return channel
