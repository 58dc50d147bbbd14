"""Jobs the worker runs, one per message kind. A job gets the shared JobContext and the
decoded message; it commits its own effects (recording the message id in the inbox in the
same transaction, so a redelivery is a no-op) and returns; the worker acks afterwards.

Raise PoisonMessage for messages that can never succeed (they are dead-lettered at once);
any other exception is retried with backoff, up to WORKER_MAX_ATTEMPTS.

    context.py   JobContext, JobMessage, PoisonMessage: what every job shares
    registry.py  which job runs each message kind
    failures.py  which failures no retry can help (dead-lettered at once)
"""
