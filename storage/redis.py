"""The Redis client both processes use (lazy: it connects on first command), for one Redis
server or a Redis Cluster, and the few commands whose form differs between the two.

`REDIS_URL` names a cluster with the scheme `redis+cluster://` (`rediss+cluster://` for TLS)
and one or more seed nodes: `redis+cluster://[user:password@]host:7000[,host:7001...]`. The
client then discovers every node and routes each command by its keys' hash slot. Keys used
together (a script's KEYS, a transaction, a DEL of several keys) share a hash tag `{...}` in
their names, so they live in one slot. The client is typed `Redis` for the code that uses it:
the two share the command surface that code relies on, and the places that must differ ask
`is_cluster` (publishing is sharded on a cluster: SPUBLISH; MGET across slots is split).
"""

from __future__ import annotations

from typing import Any, cast
from urllib.parse import unquote, urlsplit

from aiohttp import web
from redis.asyncio import BlockingConnectionPool, Redis, RedisCluster
from redis.asyncio.cluster import ClusterNode
from redis.exceptions import RedisError

from server.kernel.settings import Settings

POOL_WAIT = 5.0  # seconds a command waits for a free connection of the pool
CLUSTER_SCHEMES = {"redis+cluster": False, "rediss+cluster": True}  # scheme -> TLS


def is_cluster_url(url: str) -> bool:
    return url.partition("://")[0].lower() in CLUSTER_SCHEMES


def cluster_nodes(url: str) -> tuple[list[tuple[str, int]], dict[str, Any]]:
    """The seed nodes a cluster URL lists, and the credentials and TLS flag it carries."""
    parts = urlsplit(url)
    userinfo, _, hosts = parts.netloc.rpartition("@")
    nodes: list[tuple[str, int]] = []
    for item in hosts.split(","):
        host, _, port = item.strip().rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"REDIS_URL: {item!r} is not host:port")
        nodes.append((host.strip("[]"), int(port)))
    options: dict[str, Any] = {"ssl": CLUSTER_SCHEMES[parts.scheme.lower()]}
    if userinfo:
        user, _, password = userinfo.partition(":")
        options["username"] = unquote(user) or None
        options["password"] = unquote(password) or None
    return nodes, options


def create_redis(settings: Settings) -> Redis:
    url = settings.REDIS_URL.get_secret_value()
    if not is_cluster_url(url):
        # Blocking: at most REDIS_MAX_CONNECTIONS, and a command that finds them all busy
        # waits for one (redis-py's default pool raises "Too many connections" at once).
        pool = BlockingConnectionPool.from_url(
            url,
            max_connections=settings.REDIS_MAX_CONNECTIONS,
            timeout=POOL_WAIT,
            socket_connect_timeout=3,
            socket_timeout=5,
            health_check_interval=30,
            retry_on_timeout=False,
            client_name=settings.APP_NAME,
        )
        return Redis.from_pool(pool)
    nodes, options = cluster_nodes(url)
    cluster = RedisCluster(
        startup_nodes=[ClusterNode(host, port) for host, port in nodes],
        socket_connect_timeout=3,
        socket_timeout=5,
        client_name=settings.APP_NAME,
        max_connections=settings.REDIS_MAX_CONNECTIONS,
        **options,
    )
    # Typed as the single-server client on purpose (module docstring).
    return cast(Redis, cluster)


def is_cluster(redis: Redis) -> bool:
    return isinstance(redis, RedisCluster)


async def publish(redis: Redis, channel: str, message: bytes) -> None:
    """PUBLISH on one Redis; SPUBLISH on a cluster (only the channel's shard carries it)."""
    if is_cluster(redis):
        await cast(RedisCluster, redis).spublish(channel, message)
    else:
        await redis.publish(channel, message)


async def mget(redis: Redis, keys: list[str]) -> list[Any]:
    """MGET of keys that may lie in several hash slots (split per slot on a cluster)."""
    if is_cluster(redis):
        return list(await cast(RedisCluster, redis).mget_nonatomic(keys))
    return list(await redis.mget(keys))


async def check_cluster(redis: Redis) -> None:
    """On a cluster, fail unless every master answers and says every slot is served: from a
    master's death until its replica is promoted (and this client has learnt so), this
    fails with the dead master's connection error or `cluster_state:fail`."""
    if not is_cluster(redis):
        return
    cluster = cast(RedisCluster, redis)
    answers: dict[str, Any] = await cluster.cluster_info(target_nodes=RedisCluster.PRIMARIES)
    # One node answers with its info; several with {node name: info}.
    infos = [answers] if "cluster_state" in answers else list(answers.values())
    states = {str(info.get("cluster_state")) for info in infos}
    if states != {"ok"}:
        raise RedisError(f"Redis Cluster state is {', '.join(sorted(states))}")


def publish_command(redis: Redis) -> str:
    """The command a Lua script publishes with (the channel shares the script's hash tag)."""
    return "SPUBLISH" if is_cluster(redis) else "PUBLISH"


redis_key: web.AppKey[Redis] = web.AppKey("redis", Redis)
