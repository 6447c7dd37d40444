"""`gateway provider-accounts set|list` (credentials on stdin, never argv), `gateway secrets
generate-key`, the dev key of `gateway dev`, and `gateway serve` refusing production without keys."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path

import httpx

from commands import clean_env, gateway_cli
from gateway import devstate
from gateway.embedded import EmbeddedServers
from gateway.kit.secretbox import Keyring
from provider_account_data import assert_no_secret, credentials, hint, secret_values
from support import SECRETS_KEYS, Gateway, Merchant, wait_for


def env_for(servers: EmbeddedServers, gateway: Gateway) -> dict[str, str]:
    return clean_env(
        GATEWAY_DATABASE_URL=servers.postgres.url,
        GATEWAY_REDIS_URL=servers.redis.url,
        GATEWAY_SECRETS_KEYS=SECRETS_KEYS,
        GATEWAY_PUBLIC_URL=gateway.base_url,
        GATEWAY_LOG_LEVEL="DEBUG",
    )


async def test_set_reads_the_credentials_from_stdin(
    client: httpx.AsyncClient, gateway: Gateway, servers: EmbeddedServers, merchant: Merchant, tmp_path: Path
) -> None:
    heard: list[str | None] = []
    gateway.ctx.broadcast.on("provider_account", heard.append)
    env = env_for(servers, gateway)
    creds = credentials("mpesa") | {"till_number": "5123456"}
    args = [
        "provider-accounts",
        "set",
        merchant.id,
        "mpesa",
        "--settings",
        '{"transaction_type": "CustomerBuyGoodsOnline"}',
    ]
    r = await gateway_cli(tmp_path, env, *args, stdin=json.dumps(creds))
    assert r.returncode == 0, r.stderr
    printed = json.loads(r.stdout)
    assert printed["credentials"] == {k: hint(v) for k, v in creds.items()}
    assert printed["settings"] == {"transaction_type": "CustomerBuyGoodsOnline"}
    assert printed["webhook_url"].startswith(f"{gateway.base_url}/v1/webhooks/mpesa/{printed['id']}/")
    # The merchant's API shows the same account; the running gateway heard of the change.
    got = await client.get("/v1/provider-accounts/mpesa", headers=merchant.auth)
    assert got.json() == printed
    await wait_for(lambda: _async(printed["id"] in heard))
    # Nothing secret on the command line (it was built above from ids alone), stdout or the log lines.
    assert '"event": "provider_account_saved"' in r.stderr or "provider_account_saved" in r.stderr
    assert_no_secret(" ".join(args) + r.stdout + r.stderr, secret_values("mpesa", creds))

    # `list` shows it, by the last four characters.
    listed = await gateway_cli(tmp_path, env, "provider-accounts", "list", merchant.id, "--json")
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == [printed]
    text = await gateway_cli(tmp_path, env, "provider-accounts", "list", merchant.id)
    assert text.stdout.splitlines()[0].startswith(f"{printed['id']}  mpesa")
    assert_no_secret(listed.stdout + text.stdout + text.stderr, secret_values("mpesa", creds))


async def _async(value: bool) -> bool:
    return value


async def test_set_refuses_bad_input_and_never_echoes_it(
    gateway: Gateway, servers: EmbeddedServers, merchant: Merchant, tmp_path: Path
) -> None:
    env = env_for(servers, gateway)
    creds = credentials("paystack")
    # Credentials are no argument: an extra one is refused before anything runs.
    r = await gateway_cli(
        tmp_path, env, "provider-accounts", "set", merchant.id, "paystack", json.dumps(creds)
    )
    assert r.returncode == 2
    assert "unexpected extra argument" in r.stderr
    # Not JSON on stdin: said so, without the text.
    r = await gateway_cli(
        tmp_path, env, "provider-accounts", "set", merchant.id, "paystack", stdin=creds["secret_key"]
    )
    assert (r.returncode, r.stderr.strip()) == (2, "The credentials on stdin is not a JSON object.")
    # A live key in test mode, and a missing field: each named.
    live = credentials("paystack", live=True)
    r = await gateway_cli(
        tmp_path, env, "provider-accounts", "set", merchant.id, "paystack", stdin=json.dumps(live)
    )
    assert (r.returncode, r.stderr.strip()) == (
        2,
        "credentials.secret_key: Value error, must be a test-mode key: sk_test_…",
    )
    r = await gateway_cli(tmp_path, env, "provider-accounts", "set", merchant.id, "stripe", stdin="{}")
    assert r.returncode == 2
    assert r.stderr.splitlines() == [
        "credentials.secret_key: Field required",
        "credentials.webhook_secret: Field required",
    ]
    r = await gateway_cli(
        tmp_path, env, "provider-accounts", "set", "mer_nobody", "paystack", stdin=json.dumps(creds)
    )
    assert (r.returncode, r.stderr.strip()) == (2, "No merchant 'mer_nobody'.")
    r = await gateway_cli(
        tmp_path, env, "provider-accounts", "set", merchant.id, "sandbox", stdin=json.dumps(creds)
    )
    assert r.returncode == 2
    assert r.stderr.startswith("sandbox runs inside the gateway: it takes no account.")
    # Without a keyring.
    no_keys = {k: v for k, v in env.items() if k != "GATEWAY_SECRETS_KEYS"}
    r = await gateway_cli(
        tmp_path, no_keys, "provider-accounts", "set", merchant.id, "paystack", stdin=json.dumps(creds)
    )
    assert (r.returncode, r.stderr.strip()) == (
        2,
        "Set GATEWAY_SECRETS_KEYS (make a key with `gateway secrets generate-key`).",
    )
    assert (
        await gateway.scalar("SELECT count(*) FROM provider_accounts WHERE merchant_id = :m", m=merchant.id)
        == 0
    )


async def test_generate_key(tmp_path: Path) -> None:
    r = await gateway_cli(tmp_path, clean_env(), "secrets", "generate-key", "--id", "k2027")
    assert r.returncode == 0, r.stderr
    keyring = Keyring.parse(r.stdout)
    assert keyring.current == "k2027"
    assert r.stdout.startswith("k2027:")
    assert len(r.stdout.strip()) == len("k2027:") + 43
    assert "GATEWAY_SECRETS_KEYS" in r.stderr
    other = await gateway_cli(tmp_path, clean_env(), "secrets", "generate-key")
    assert other.returncode == 0
    assert Keyring.parse(other.stdout).current.startswith("k20")
    bad = await gateway_cli(tmp_path, clean_env(), "secrets", "generate-key", "--id", "no spaces")
    assert bad.returncode == 2


def test_the_dev_key_is_made_once_private_and_reused(tmp_path: Path) -> None:
    data = tmp_path / ".data"
    first = devstate.dev_secrets_key(data)
    path = data / "secrets.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert Keyring.parse(first).current == "dev"
    assert devstate.dev_secrets_key(data) == first
    assert devstate.saved_secrets_key(data) == first


async def test_serve_refuses_production_without_keys(servers: EmbeddedServers, tmp_path: Path) -> None:
    env = clean_env(
        GATEWAY_DATABASE_URL=servers.postgres.url,
        GATEWAY_REDIS_URL=servers.redis.url,
        GATEWAY_ENVIRONMENT="production",
    )
    for command in ("serve", "worker"):
        r = subprocess.run(
            [sys.executable, "-m", "gateway.cli", command],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert (r.returncode, r.stdout) == (2, ""), r.stderr
        assert (
            "GATEWAY_ENVIRONMENT is production (the live deployment) and GATEWAY_SECRETS_KEYS is unset"
            in r.stderr
        )
    # An unreadable keyring is refused in any environment.
    r = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "serve"],
        env=env | {"GATEWAY_ENVIRONMENT": "development", "GATEWAY_SECRETS_KEYS": "k1:c2hvcnQ"},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert r.returncode == 2
    assert "GATEWAY_SECRETS_KEYS is not valid: key 'k1' must be 32 bytes" in r.stderr
