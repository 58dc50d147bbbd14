"""Shared fixtures. The session gets a throwaway PostgreSQL database migrated to head with
Alembic (never create_all), and its own Redis key prefix and RabbitMQ names, so test runs
never see each other's data; everything is removed at the end."""

from __future__ import annotations

import asyncio
import gc
import os
import socket
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiormq
import pytest
import redis.asyncio
from aiohttp import web
from aiohttp.test_utils import TestClient

from server import dbadmin
from server.app import create_app
from server.auth.service import AuthService
from server.kernel.principal import Role
from server.kernel.settings import Settings
from storage.db import create_pool, transaction
from storage.redis import is_cluster_url
from tests.support.accounts import Account, AsUser, create_account, log_in
from tests.support.processes import interrupt_at_once, stop_descendants
from tests.support.redis_cluster import RedisClusterNodes, start_cluster
from workers.broker.topology import Topology
from workers.process import worker_running
from workers.worker import Worker


def pytest_configure(config: pytest.Config) -> None:
    interrupt_at_once()  # one Ctrl-C stops the run (tests/support/processes.py)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """Nothing the run started outlives it, interrupted or not."""
    stopped = stop_descendants()
    if stopped:
        print(f"stopped {len(stopped)} processes the tests left running:", *stopped, sep="\n  ")


@pytest.fixture(autouse=True)
async def _settle_closing_transports() -> AsyncIterator[None]:
    """Torn down last (autouse: set up first): a few turns of the test's event loop, so that
    the sockets whose close a library started without waiting for it (redis-py's `nowait`
    disconnects, aiohttp's released connections) are closed before pytest-asyncio closes
    the loop. Otherwise they are garbage-collected unclosed, during some later test, whose
    run then fails on the ResourceWarning."""
    yield
    for _ in range(3):
        await asyncio.sleep(0)


# Modules that break connections on purpose (proxies cut, masters and brokers killed), and
# the Redis Cluster module (its client replaces node connections when the slot map moves).
# redis-py and aiohttp sometimes drop a socket whose peer vanished mid-operation without
# closing it; the garbage collector then finds it during some later, unrelated test, which
# fails on the ResourceWarning. Those sockets are collected at the end of each of these
# tests instead, and only warnings about unclosed sockets, transports and redis-py
# connections (or a stream writer whose loop has gone) are forgiven there.
BREAKS_CONNECTIONS = {
    "test_broker_failover.py",
    "test_broker_outage_log.py",
    "test_broker_restart.py",
    "test_messaging_broker_restart.py",
    "test_postgres_restart.py",
    "test_realtime_resync.py",
    "test_redis_cluster.py",
    "test_redis_cluster_failover.py",
    "test_redis_errors.py",
    "test_redis_restart.py",
    "test_service_outages.py",
}


@pytest.fixture(autouse=True)
def _collect_dropped_sockets(request: pytest.FixtureRequest) -> Iterator[None]:
    if request.node.path.name not in BREAKS_CONNECTIONS:
        yield
        return
    forward = sys.unraisablehook

    def hook(unraisable: Any) -> None:
        text = str(unraisable.exc_value)
        dropped_socket = isinstance(unraisable.exc_value, ResourceWarning) and (
            isinstance(unraisable.object, socket.socket)
            or "loop is closed" in text
            or text.startswith("unclosed transport")
            or text.startswith("unclosed Connection <redis.")  # redis-py's, at its __del__
        )
        if not dropped_socket:
            forward(unraisable)

    # From setup to the end of teardown: a dropped connection may be collected while the
    # test's fixtures (its event loop, its clients) are torn down.
    sys.unraisablehook = hook
    try:
        yield
        gc.collect()
    finally:
        sys.unraisablehook = forward


# Tests of one Redis server's outages: not run when REDIS_TEST_CLUSTER=1 puts every test on
# a cluster (test_redis_cluster_failover.py covers a cluster's).
SINGLE_REDIS_MODULES = {"test_realtime_resync.py", "test_redis_restart.py", "test_redis_errors.py"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests that stop and start the machine's own RabbitMQ, Redis or PostgreSQL run only
    when asked (RUN_DISRUPTIVE=1; .ci/run asks): a plain `make test` never disturbs a
    user's services."""
    if os.environ.get("REDIS_TEST_CLUSTER") == "1":
        single = pytest.mark.skip(reason="puts a TCP proxy in front of, or restarts, one Redis")
        for item in items:
            if item.path.name in SINGLE_REDIS_MODULES:
                item.add_marker(single)
    if os.environ.get("RUN_DISRUPTIVE") == "1":
        return
    skip = pytest.mark.skip(reason="restarts a shared service; set RUN_DISRUPTIVE=1 to run")
    for item in items:
        if "disruptive" in item.keywords:
            item.add_marker(skip)


RUN_ID = uuid.uuid4().hex[:8]


def make_settings(**overrides: Any) -> Settings:
    """Test settings: never read .env; short intervals so tests don't wait."""
    values: dict[str, Any] = {
        "ENVIRONMENT": "test",
        "POSTGRES_DB": f"rt_test_{RUN_ID}",
        "REDIS_PREFIX": f"rt-test-{RUN_ID}",
        "AMQP_PREFIX": f"rt-test-{RUN_ID}",
        "OUTBOX_POLL_INTERVAL": 0.5,
        "WORKER_SHUTDOWN_TIMEOUT": 5.0,
        "LOG_LEVEL": "INFO",
        # Every test client registers from 127.0.0.1: tests of the limit set their own.
        "REGISTER_MAX_PER_ADDRESS": 1_000_000,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[RedisClusterNodes]:
    """A Redis Cluster of the session's own (three masters, a replica each), started on the
    first test that asks for it."""
    nodes = start_cluster()
    yield nodes
    nodes.stop()


@pytest.fixture(scope="session")
def base_settings(request: pytest.FixtureRequest) -> Iterator[Settings]:
    """The session's settings, with its database created and migrated to head. With
    REDIS_TEST_CLUSTER=1 every test uses a Redis Cluster (redis_cluster) instead of the
    machine's Redis."""
    settings = make_settings()
    if os.environ.get("REDIS_TEST_CLUSTER") == "1":
        cluster: RedisClusterNodes = request.getfixturevalue("redis_cluster")
        os.environ["REDIS_URL"] = cluster.url  # for every Settings a test makes itself
        settings = make_settings()
    dbadmin.drop_database(settings, settings.POSTGRES_DB)
    dbadmin.create_database(settings)
    dbadmin.migrate(settings)
    yield settings
    dbadmin.drop_database(settings, settings.POSTGRES_DB)
    asyncio.run(_remove_broker_and_redis_state(settings))


async def _remove_broker_and_redis_state(settings: Settings) -> None:
    try:
        connection = await aiormq.connect(settings.RABBITMQ_URL.get_secret_value())
        channel = await connection.channel()
        await Topology.from_settings(settings).delete(channel)
        await connection.close()
    except Exception as error:  # the broker may have been stopped by a test
        print(f"could not remove test queues: {error}")
    if is_cluster_url(settings.REDIS_URL.get_secret_value()):
        return  # the cluster is the session's own and goes with it
    client = redis.asyncio.Redis.from_url(settings.REDIS_URL.get_secret_value())
    keys = [key async for key in client.scan_iter(match=f"{settings.REDIS_PREFIX}:*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


@pytest.fixture
def settings(base_settings: Settings) -> Settings:
    return base_settings


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[Any]:
    """A pool on the test database, for arranging and checking rows directly."""
    async with create_pool(settings) as pool:
        yield pool


@pytest.fixture
async def clean_tables(db: Any) -> None:
    """Empty every table whose contents a test counts."""
    async with transaction(db) as conn:
        await conn.execute("TRUNCATE tasks, outbox")


@pytest.fixture(scope="session")
def auth_service(base_settings: Settings) -> AuthService:
    return AuthService(base_settings)


@pytest.fixture
async def alice(client: Any, db: Any, auth_service: AuthService) -> Account:
    """A logged-in user."""
    return await log_in(client, await create_account(db, auth_service))


@pytest.fixture
async def bob(client: Any, db: Any, auth_service: AuthService) -> Account:
    """Another logged-in user."""
    return await log_in(client, await create_account(db, auth_service))


@pytest.fixture
async def admin(client: Any, db: Any, auth_service: AuthService) -> Account:
    return await log_in(client, await create_account(db, auth_service, role=Role.admin))


@pytest.fixture
async def superuser(client: Any, db: Any, auth_service: AuthService) -> Account:
    return await log_in(client, await create_account(db, auth_service, role=Role.superuser))


@pytest.fixture
def app(settings: Settings) -> web.Application:
    return create_app(settings)


@pytest.fixture
async def client(aiohttp_client: Any, app: web.Application) -> TestClient[Any, Any]:
    test_client: TestClient[Any, Any] = await aiohttp_client(app)
    return test_client


@pytest.fixture
async def worker(settings: Settings) -> AsyncIterator[Worker]:
    """The real worker, in this process, consuming from the session's queues."""
    async with worker_running(settings) as running:
        await running.amqp.wait_connected(timeout=10)
        yield running


@pytest.fixture
def rabbitmq_ctl() -> str:
    for candidate in ("/usr/sbin/rabbitmqctl", "/usr/lib/rabbitmq/bin/rabbitmqctl"):
        if os.path.exists(candidate):
            return candidate
    pytest.fail("rabbitmqctl is not installed; the broker-restart test needs it")


@pytest.fixture
def user_client(client: Any, alice: Account) -> AsUser:
    """The client, logged in as alice."""
    return AsUser(client, alice)
