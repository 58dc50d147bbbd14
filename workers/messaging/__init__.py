"""The server's side of messaging: accepting a message into the outbox in the caller's
transaction (acceptor.py), the one outbox writer (outbox.py) and the relay that publishes
outbox entries to RabbitMQ (relay.py); the messaging families of GET /metrics (metrics.py).
The kinds and their payloads: workers/broker/kinds.py."""
