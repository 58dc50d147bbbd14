"""The settings of the services the server and the worker lean on: PostgreSQL, Redis,
RabbitMQ (with the outbox relay), and the worker process."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator


class BackendSettings(BaseModel):
    # -- PostgreSQL --------------------------------------------------------------------------
    POSTGRES_SERVER: str = Field("localhost", description="PostgreSQL host.")
    POSTGRES_PORT: int = Field(5432, ge=1, le=65535, description="PostgreSQL port.")
    POSTGRES_USER: str = Field("postgres", description="PostgreSQL user.")
    POSTGRES_PASSWORD: SecretStr = Field(SecretStr(""), description="PostgreSQL password.")
    POSTGRES_DB: str = Field(
        "realtime", pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,62}$", description="Database name."
    )
    DB_POOL_SIZE: int = Field(
        10, ge=1, description="Connections the pool keeps once opened (opened on demand)."
    )
    DB_MAX_OVERFLOW: int = Field(
        10, ge=0, description="Extra connections allowed beyond DB_POOL_SIZE under load."
    )
    DB_CONNECT_TIMEOUT: float = Field(5.0, gt=0, description="Seconds to wait for a connection.")
    DB_STATEMENT_TIMEOUT: float = Field(30.0, gt=0, description="Seconds before a query fails.")

    # -- Redis -------------------------------------------------------------------------------
    REDIS_URL: SecretStr = Field(
        SecretStr("redis://localhost:6379/0"),
        description=(
            "Redis URL (may carry a password). A Redis Cluster (Redis >= 7) is named by"
            " `redis+cluster://[user:password@]host:7000[,host:7001...]` (`rediss+cluster://`"
            " for TLS): the listed nodes are seeds, the others are discovered. Fan-out then"
            " uses sharded pub/sub (docs/OPERATIONS.md, Redis Cluster)."
        ),
    )
    REDIS_PREFIX: str = Field(
        "rt",
        pattern=r"^[A-Za-z0-9_.-]{1,32}$",
        description="Prefix of every Redis key, so several deployments can share one Redis.",
    )
    REDIS_MAX_CONNECTIONS: int = Field(
        100,
        ge=4,
        le=10000,
        description="Connections to Redis per process. When all are busy a command waits for"
        " one (up to 5 s) instead of failing, so a burst of thousands of clients connecting at"
        " once queues here. On a Redis Cluster it is the limit per node, and a command finding"
        " them all busy fails (redis-py's cluster client cannot wait): size it for bursts.",
    )

    # -- RabbitMQ ----------------------------------------------------------------------------
    RABBITMQ_URL: SecretStr = Field(
        SecretStr("amqp://guest:guest@localhost:5672/"),
        description="AMQP URL (carries the password; never logged). Several brokers, the "
        "nodes of a cluster: their URLs separated by commas (a comma in a password is written "
        "%2C); the server and the worker connect to the first that answers and move to the "
        "next when it stops.",
    )
    AMQP_QUEUE_TYPE: Literal["classic", "quorum"] = Field(
        "classic",
        description="Type of the work, retry and dead-letter queues. `quorum` replicates them "
        "over a cluster's nodes (use it with several brokers); `classic` is the default "
        "because one broker gains nothing from replication, writes less, and queues declared "
        "before this setting existed are classic: RabbitMQ cannot change an existing queue's "
        "type (docs/OPERATIONS.md says how to switch).",
    )
    AMQP_PREFIX: str = Field(
        "rt",
        pattern=r"^[A-Za-z0-9_.-]{1,32}$",
        description="Prefix of every exchange and queue name.",
    )
    OUTBOX_BATCH_SIZE: int = Field(
        200, ge=1, le=5000, description="Outbox rows the relay publishes per round."
    )
    OUTBOX_POLL_INTERVAL: float = Field(
        2.0, gt=0, description="Seconds between outbox scans when no NOTIFY arrives."
    )

    # -- worker ------------------------------------------------------------------------------
    WORKER_PREFETCH: int = Field(
        128,
        ge=1,
        le=1000,
        description=(
            "Messages the worker processes at once (AMQP prefetch); below ~64 the broker "
            "waits for acks under load (docs/BENCHMARKS.md)."
        ),
    )
    WORKER_SHUTDOWN_TIMEOUT: float = Field(
        10.0, gt=0, description="Seconds in-flight jobs get to finish when the worker stops."
    )
    READY_REQUIRES_WORKER: bool = Field(
        False,
        description="GET /health/ready answers 503 while no worker consumes the queues (by "
        "their heartbeats); off, it reports `worker.status` and stays 200, since the server "
        "still accepts messages into the outbox.",
    )
    WORKER_MAX_ATTEMPTS: int = Field(
        5, ge=1, le=50, description="Tries per message before it goes to the dead-letter queue."
    )
    RETRY_DELAYS: str = Field(
        "1,5,30,120",
        pattern=r"^\d+(\.\d+)?(,\d+(\.\d+)?)*$",
        description="Seconds to wait before the 1st, 2nd, ... retry (the last repeats).",
    )
    TASK_MAX_SECONDS: float = Field(
        300.0, gt=0, description="Longest `seconds` POST /tasks/example accepts."
    )

    @field_validator("RABBITMQ_URL")
    @classmethod
    def _amqp_urls(cls, value: SecretStr) -> SecretStr:
        urls = [part.strip() for part in value.get_secret_value().split(",") if part.strip()]
        if not urls or not all(url.startswith(("amqp://", "amqps://")) for url in urls):
            raise ValueError("one amqp:// or amqps:// URL, or several separated by commas")
        return value

    @property
    def retry_delays_ms(self) -> tuple[int, ...]:
        return tuple(int(float(part) * 1000) for part in self.RETRY_DELAYS.split(","))

    @property
    def db_max_connections(self) -> int:
        return self.DB_POOL_SIZE + self.DB_MAX_OVERFLOW
