"""Herald's Chalice app: creates the app and registers blueprints and event handlers."""

from typing import Any

from chalice.app import Chalice, SQSEvent

from chalicelib import logs
from chalicelib.api import (
    app_notifications,
    correlation,
    events,
    fallback,
    handlers,
    inbox,
    notifiers,
    openapi,
    operational,
    platforms,
    portal,
)
from chalicelib.settings import DELIVERIES_QUEUE, FANOUT_QUEUE, INGEST_QUEUE

logs.configure()  # before Chalice, which would otherwise set app.log (the "herald" logger) to ERROR
app = Chalice(app_name="herald")
correlation.register(app)
app.register_blueprint(handlers.bp)
app.register_blueprint(events.bp)
app.register_blueprint(inbox.bp)
app.register_blueprint(platforms.bp)
app.register_blueprint(notifiers.bp)
app.register_blueprint(app_notifications.bp)
app.register_blueprint(operational.bp)
app.register_blueprint(portal.bp)
app.register_blueprint(openapi.bp)
fallback.register(app)  # after every face: it answers what none of them serves


@app.on_sqs_message(queue=DELIVERIES_QUEUE, batch_size=10)
def deliver(event: SQSEvent) -> dict[str, Any]:
    """Deliveries queue: one message per event x handler."""
    from chalicelib.delivery import worker  # the HTTP sender stack: not on the API's cold start

    return worker.partial_batch_response(worker.deliver_batch(event.to_dict()["Records"]))


@app.on_sqs_message(queue=INGEST_QUEUE, batch_size=10)
def ingest_events(event: SQSEvent) -> dict[str, Any]:
    """Ingest queue: events published by producers inside AWS, same as POST /v1/events."""
    from chalicelib.delivery import ingest, worker

    return worker.partial_batch_response(ingest.ingest_batch(event.to_dict()["Records"]))


@app.on_sqs_message(queue=FANOUT_QUEUE, batch_size=1)
def fan_out(event: SQSEvent) -> dict[str, Any]:
    """Fan-out queue: the deliveries of an event with more handlers than a request reads."""
    from chalicelib.delivery import jobs, worker

    return worker.partial_batch_response(jobs.fan_out_batch(event.to_dict()["Records"], event.context))
