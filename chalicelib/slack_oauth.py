"""Slack's OAuth v2 code exchange: a one-time `code` becomes an incoming webhook.

When a Slack app with the `incoming-webhook` scope is installed, Slack redirects the user
to `redirect_uri` with a `code`; `POST oauth.v2.access` (form-encoded client_id,
client_secret, code, redirect_uri) answers `{"ok": true, "access_token", "team": {id,
name}, "incoming_webhook": {channel, channel_id, configuration_url, url}}` or
`{"ok": false, "error": "invalid_code"}` (bad_redirect_uri, code_already_used,
invalid_client_id, bad_client_secret...). Slack answers HTTP 200 for both.

The redirect URI is the client's own, sent as given: Slack wants the one its authorize URL
had, so Herald never builds it (from the request's Host or otherwise).

Herald keeps only the incoming webhook (its URL, team and channel): the access token is
read past and dropped, and neither it nor the client secret ever reaches a log line, an
error message or a response. The call goes through the SSRF-guarded SafeSender like
every other outbound request.
"""

from __future__ import annotations

import json
import logging
from urllib.parse import urlencode

from pydantic import BaseModel, ConfigDict, ValidationError

from chalicelib.delivery.safe_http import SafeSender
from chalicelib.errors import HeraldError, InvalidInput
from chalicelib.models.app_notifications import SlackInstall
from chalicelib.settings import get_settings

logger = logging.getLogger("herald.slack_oauth")

EXCHANGE_DEADLINE_SECONDS = 10.0
USER_AGENT = "Herald-Slack-OAuth/1.0"
# Slack errors that mean the client-side half of the flow was wrong (the redirect URI
# must be the one sent to slack.com/oauth/v2/authorize); every other `ok: false` names the code.
_REDIRECT_ERRORS = frozenset({"bad_redirect_uri", "invalid_redirect_uri"})
# Errors that are the server's configuration, not the client's request.
_CONFIG_ERRORS = frozenset({"invalid_client_id", "bad_client_secret", "invalid_client"})


class SlackUnavailable(HeraldError):
    """Slack could not be reached or answered something other than its API's JSON."""

    status = 502
    title = "Bad gateway"


class SlackNotConfigured(HeraldError):
    """This server has no Slack app credentials (HERALD_SLACK_CLIENT_ID / _SECRET)."""

    status = 503
    title = "Service unavailable"


class _Team(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str = ""
    name: str = ""


class _IncomingWebhook(BaseModel):
    model_config = ConfigDict(extra="ignore")

    url: str
    channel: str = ""
    channel_id: str = ""
    configuration_url: str = ""


class _AccessAnswer(BaseModel):
    """The parts of Slack's answer Herald reads (access_token is deliberately absent)."""

    model_config = ConfigDict(extra="ignore")

    ok: bool
    error: str | None = None
    team: _Team | None = None
    incoming_webhook: _IncomingWebhook | None = None


def exchange_code(code: str, redirect_uri: str) -> SlackInstall:
    """Exchange an OAuth code for the incoming webhook it installed.

    Raises InvalidInput (naming `code`, or `redirect_uri` too for a redirect mismatch:
    the face names them its way) when Slack refuses the code, SlackUnavailable when Slack cannot be reached
    and SlackNotConfigured when this server has no Slack app credentials."""
    settings = get_settings()
    if not settings.slack_client_id or not settings.slack_client_secret:
        raise SlackNotConfigured("Slack setup is not configured on this server; use a webhook instead")
    form = urlencode(
        {
            "client_id": settings.slack_client_id,
            "client_secret": settings.slack_client_secret,
            "code": code,
            "redirect_uri": redirect_uri,
        }
    ).encode()
    sender = SafeSender(
        pool_size=1,
        allow_private=settings.allow_private_targets,
        deadline=EXCHANGE_DEADLINE_SECONDS,
        user_agent=USER_AGENT,
    )
    try:
        result = sender.post(
            f"{settings.slack_api_url}/oauth.v2.access",
            body=form,
            headers={"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"},
        )
    finally:
        sender.close()
    if result.status is None:
        logger.warning("Slack oauth.v2.access unreachable: %s", result.error)
        raise SlackUnavailable(f"Slack could not be reached to complete the setup ({result.error}); retry")
    if result.status == 429 or result.status >= 500:
        logger.warning("Slack oauth.v2.access answered HTTP %s", result.status)
        raise SlackUnavailable(f"Slack answered HTTP {result.status} to the code exchange; retry later")
    try:
        answer = _AccessAnswer.model_validate(json.loads(result.body))
    except (ValueError, ValidationError):
        logger.warning("Slack oauth.v2.access answered HTTP %s without its JSON", result.status)
        raise SlackUnavailable(
            f"Slack answered the code exchange with HTTP {result.status} and no JSON"
        ) from None
    if not answer.ok:
        error = (answer.error or "unknown_error")[:64]
        logger.info("Slack refused an OAuth code: %s", error)
        if error in _CONFIG_ERRORS:
            logger.error("Slack refused Herald's Slack app credentials: %s", error)
            raise SlackNotConfigured(f"Slack refused this server's Slack app credentials ({error})")
        if error in _REDIRECT_ERRORS:
            raise InvalidInput.of(
                [
                    ("code", f"Slack refused the code ({error})"),
                    ("redirect_uri", "must be the redirect URI the code was issued for"),
                ]
            )
        raise InvalidInput("code", f"Slack refused the code ({error})")
    if answer.incoming_webhook is None:
        raise InvalidInput("code", "the Slack authorization did not include the incoming-webhook scope")
    team = answer.team or _Team()
    hook = answer.incoming_webhook
    return SlackInstall(
        webhook_url=hook.url,
        team=team.name or team.id,
        channel=hook.channel or hook.channel_id,
    )
