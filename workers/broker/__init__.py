"""RabbitMQ: the supervised aiormq connection, the queue topology and batched publishing.

Shared by the server (the outbox relay) and the worker process; imports nothing above it.
"""
