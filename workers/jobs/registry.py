"""Which job runs a message: by (concern, message type)."""

from __future__ import annotations

from workers.jobs import events, notifications, orders, tasks
from workers.jobs.context import Job


def registry() -> dict[tuple[str, str], Job]:
    return {
        ("tasks", "example"): tasks.run_example,
        ("notifications.user", "user_notification"): notifications.user_notification,
        ("notifications.admin", "admin_notification"): notifications.admin_notification,
        ("orders", "order_processing"): orders.process,
        ("events.system", "system_event"): events.system_event,
    }
