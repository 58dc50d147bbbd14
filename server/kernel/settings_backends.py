"""The settings of the services the server and the worker lean on: PostgreSQL, Redis,
RabbitMQ (with the outbox relay), and the worker process."""

from __future__ import annotations

from pydantic import BaseModel, Field, SecretStr


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
        SecretStr("redis://localhost:6379/0"), description="Redis URL (may carry a password)."
    )
    REDIS_PREFIX: str = Field(
        "rt",
        pattern=r"^[A-Za-z0-9_.-]{1,32}$",
        description="Prefix of every Redis key, so several deployments can share one Redis.",
    )

    # -- RabbitMQ ----------------------------------------------------------------------------
    RABBITMQ_URL: SecretStr = Field(
        SecretStr("amqp://guest:guest@localhost:5672/"),
        description="AMQP URL (carries the password; never logged).",
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

    @property
    def retry_delays_ms(self) -> tuple[int, ...]:
        return tuple(int(float(part) * 1000) for part in self.RETRY_DELAYS.split(","))

    @property
    def db_max_connections(self) -> int:
        return self.DB_POOL_SIZE + self.DB_MAX_OVERFLOW
