"""The one table of message kinds. Every message through the broker is a JSON object whose
`type` is its kind; the kind names its concern (the routing key, and the queue
`{prefix}.<concern>`) and, for the kinds the messaging API accepts, its payload model.

    kind                concern              payload            sent by
    example             tasks                (task_id)          POST /tasks/example
    user_notification   notifications.user   UserNotification   POST /messaging/user-notification
    admin_notification  notifications.admin  AdminNotification  POST /messaging/admin-notification
    order_processing    orders               OrderProcessing    POST /messaging/order-processing
    system_event        events.system        SystemEvent        POST /messaging/system-event

The topology declares a queue per concern, the outbox writer routes by it, the worker runs a
message only from its kind's queue (workers/jobs/registry.py: one job per kind), and the
HTTP handlers and MessageClient take the payload models from here.
"""

from __future__ import annotations

from dataclasses import dataclass

from workers.broker.payloads import (
    AdminNotification,
    OrderProcessing,
    Payload,
    SystemEvent,
    UserNotification,
)

MAX_MESSAGE_BYTES = 256 * 1024  # the largest encoded message the worker takes


@dataclass(frozen=True)
class Kind:
    name: str
    concern: str
    summary: str
    model: type[Payload] | None = None  # None: not a kind of the messaging API


KINDS = {
    kind.name: kind
    for kind in (
        Kind("example", "tasks", "Run the example background task"),
        Kind("user_notification", "notifications.user", "Notify a user", UserNotification),
        Kind("admin_notification", "notifications.admin", "Notify every admin", AdminNotification),
        Kind("order_processing", "orders", "Process an order", OrderProcessing),
        Kind("system_event", "events.system", "Record a system event", SystemEvent),
    )
}

# The concerns in table order: one work queue (and one dead-letter queue) each.
CONCERNS = tuple(dict.fromkeys(kind.concern for kind in KINDS.values()))

# The kinds of the messaging API, by payload model.
MESSAGE_KINDS = {kind.model: kind for kind in KINDS.values() if kind.model is not None}


def payload_model(kind: str) -> type[Payload]:
    """The payload model of a messaging-API kind; KeyError for any other name."""
    model = KINDS[kind].model
    if model is None:
        raise KeyError(kind)
    return model
