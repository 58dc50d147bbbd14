"""The worker process and the publisher side of messaging: the RabbitMQ connection
supervisor, the queue topology, the outbox relay (run by the server) and the jobs."""
