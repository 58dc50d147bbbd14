"""The server's side of messaging: the message kinds, accepting a message into the outbox in
the caller's transaction, and the relay that publishes outbox rows to RabbitMQ."""
