"""The one place the gateway makes its Redis clients, from GATEWAY_REDIS_URL.

`redis://`, `rediss://` (TLS: `ssl_cert_reqs`, `ssl_ca_certs`, `ssl_certfile`, `ssl_keyfile`, ...
as query parameters, the way redis-py's `from_url` takes them) and `unix://` go to redis-py's
`from_url` unchanged. redis-py has no URL for Sentinel, so we take the one Prefect, docket and
RedisVL use:

    redis+sentinel://[[user]:password@]host[:port][,host2[:port2],...]/service_name[/db][?options]
    rediss+sentinel://...   (TLS to the master and to the sentinels)

Sentinels default to port 26379. The user and password are the master's; `sentinel_username` and
`sentinel_password` authenticate to the sentinels. Every other option is a redis-py URL option for
the master's connections (on a TLS scheme the `ssl_*` ones are also the sentinels'). The client
asks the sentinels for the master and follows a failover, pub/sub included.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode

from redis.asyncio import Redis
from redis.asyncio.connection import parse_url
from redis.asyncio.sentinel import Sentinel

SENTINEL_SCHEMES = ("redis+sentinel", "rediss+sentinel")
SENTINEL_PORT = 26379
_SENTINEL_ONLY = ("sentinel_username", "sentinel_password")


@dataclass(frozen=True)
class SentinelUrl:
    sentinels: list[tuple[str, int]]
    service_name: str
    tls: bool
    # redis-py's keywords for the master's connections (db, password, ssl_*, timeouts, ...).
    master: dict[str, Any] = field(default_factory=dict)
    # ... and for the sentinels' (their credentials; the ssl_* options on a TLS scheme).
    sentinel: dict[str, Any] = field(default_factory=dict)


def is_sentinel_url(url: str) -> bool:
    return url.split("://", 1)[0].lower() in SENTINEL_SCHEMES


def parse_sentinel_url(url: str) -> SentinelUrl:
    """ValueError, naming what is wrong, unless `url` is a sentinel URL as above."""
    scheme, _, rest = url.partition("://")
    scheme = scheme.lower()
    if scheme not in SENTINEL_SCHEMES:
        raise ValueError(f"not a sentinel URL: {scheme}://")
    rest, _, query = rest.partition("?")
    netloc, _, path = rest.partition("/")
    userinfo, _, hosts = netloc.rpartition("@")
    sentinels = []
    for member in hosts.split(","):
        host, _, port = member.strip().rpartition(":") if ":" in member else (member.strip(), "", "")
        if not host or (port and not port.isdigit()):
            raise ValueError(f"a sentinel must be host[:port], not {member!r}")
        sentinels.append((host, int(port) if port else SENTINEL_PORT))
    service, _, db = path.strip("/").partition("/")
    if not service:
        raise ValueError("a sentinel URL names its service: redis+sentinel://host:26379/<service_name>[/db]")
    if db and not db.isdigit():
        raise ValueError(f"the database after the service name is a number, not {db!r}")
    options = parse_qsl(query, keep_blank_values=True)
    tls = scheme == "rediss+sentinel"
    # The master's keywords as redis-py parses a standalone URL, so every option means what it
    # means there; the host is the sentinels' to say.
    standalone = f"{'rediss' if tls else 'redis'}://{userinfo + '@' if userinfo else ''}master/{db or 0}"
    master: dict[str, Any] = dict(
        parse_url(f"{standalone}?{urlencode([o for o in options if o[0] not in _SENTINEL_ONLY])}")
    )
    for key in ("host", "port", "connection_class"):
        master.pop(key, None)
    sentinel: dict[str, Any] = {k[len("sentinel_") :]: unquote(v) for k, v in options if k in _SENTINEL_ONLY}
    if tls:
        master["ssl"] = True  # the sentinel pool's TLS connection class
        sentinel |= {"ssl": True} | {k: v for k, v in master.items() if k.startswith("ssl_")}
    return SentinelUrl(sentinels, service, tls, master, sentinel)


class _SentinelMasterRedis(Redis):
    """The master's client; closing it closes its connections to the sentinels too."""

    sentinels: Sentinel

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        await super().aclose(close_connection_pool)
        await self.sentinels.aclose()


def connect_redis(url: str, **options: Any) -> Redis:
    """A client for `url`; `options` (timeouts, health checks) apply to every connection it makes,
    the sentinels' included."""
    if not is_sentinel_url(url):
        return Redis.from_url(url, **options)
    parsed = parse_sentinel_url(url)
    timeouts = {k: v for k, v in (options | parsed.master).items() if k.startswith("socket_")}
    sentinel = Sentinel(parsed.sentinels, sentinel_kwargs=timeouts | parsed.sentinel)  # type: ignore[no-untyped-call]
    # The URL's options win over the caller's defaults, as with redis-py's from_url.
    client = sentinel.master_for(
        parsed.service_name, redis_class=_SentinelMasterRedis, **(options | parsed.master)
    )
    assert isinstance(client, _SentinelMasterRedis)
    client.sentinels = sentinel
    return client
