"""What seed 001 (the Scalingo notifiers API) fixes, shared by the functional and e2e suites."""

NOTIFIER_KEYS = {
    "id",
    "name",
    "active",
    "type",
    "platform_id",
    "created_at",
    "updated_at",
    "send_all_alerts",
    "send_all_events",
    "selected_event_ids",
    "app_id",
    "app",
    "type_data",
}
SLACK = "5982f145d48c3600273ef089"
WEBHOOK = "5982f145d48c3600273ef08a"
