"""The kind table (workers/broker/kinds.py) and what the worker reads from it: one job per
kind, one queue per concern, and the decoding that dead-letters what no retry can help."""

from __future__ import annotations

import orjson
import pytest

from workers.broker.kinds import CONCERNS, KINDS, MAX_MESSAGE_BYTES, MESSAGE_KINDS, payload_model
from workers.broker.payloads import UserNotification
from workers.jobs.context import PoisonMessage
from workers.jobs.registry import job_for, registry


def test_every_kind_has_a_job_and_every_job_a_kind() -> None:
    assert set(registry()) == set(KINDS)


def test_every_concern_has_one_queue_in_table_order() -> None:
    assert CONCERNS == (
        "tasks",
        "notifications.user",
        "notifications.admin",
        "orders",
        "events.system",
    )


def test_the_messaging_api_kinds_are_those_with_a_payload_model() -> None:
    assert sorted(kind.name for kind in MESSAGE_KINDS.values()) == [
        "admin_notification",
        "order_processing",
        "system_event",
        "user_notification",
    ]
    assert MESSAGE_KINDS[UserNotification].concern == "notifications.user"
    assert payload_model("user_notification") is UserNotification
    with pytest.raises(KeyError):
        payload_model("example")  # a task, not a message of the API
    with pytest.raises(KeyError):
        payload_model("nope")


def test_a_message_runs_the_job_of_its_kind() -> None:
    jobs = registry()
    body = {"type": "user_notification", "payload": {"user_id": 1, "message": "hi"}}
    kind, decoded, job = job_for(jobs, "notifications.user", orjson.dumps(body))
    assert (kind, decoded, job) == ("user_notification", body, jobs["user_notification"])


@pytest.mark.parametrize(
    ("concern", "raw", "reason"),
    [
        ("tasks", b"x" * (MAX_MESSAGE_BYTES + 1), "exceeds"),
        ("tasks", b"not json", "not JSON"),
        ("tasks", b"[1, 2]", "JSON object with a string `type`"),
        ("tasks", b'{"type": 5}', "JSON object with a string `type`"),
        ("tasks", b'{"type": "nope"}', "no job handles type 'nope' on tasks"),
        ("orders", b'{"type": "example"}', "no job handles type 'example' on orders"),
    ],
)
def test_what_no_retry_can_help_is_poison(concern: str, raw: bytes, reason: str) -> None:
    with pytest.raises(PoisonMessage, match=reason):
        job_for(registry(), concern, raw)
