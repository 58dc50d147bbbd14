"""RabbitMQ: the supervised aiormq connection, the message kinds and their queues, batched
publishing, redelivery (retries, dead letters) and the dead-letter queues' repair.

Shared by the server (the outbox relay) and the worker process; imports nothing above it.

    kinds.py         the kind table: kind -> concern (queue) -> payload model (payloads.py)
    topology.py      exchanges and queues, declared from code
    amqp.py          the supervised connection
    outages.py       what the log says during a RabbitMQ outage; the retry schedule
    publishing.py    a batch published with confirms in one write
    redelivery.py    a failed delivery to its retry or dead-letter queue
    dead_letters.py  listing, showing, requeueing and purging dead letters
"""
