"""The checkout's static files (static/), read once, served with their content hash in the URL and
a year's immutable cache: a returning customer's browser asks for none of them again."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from starlette.responses import Response

STATIC_DIR: Final = Path(__file__).parent / "static"
_TYPES: Final = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}


@dataclass(frozen=True)
class Asset:
    body: bytes
    media_type: str
    version: str


def _load() -> dict[str, Asset]:
    found = {}
    for path in sorted(STATIC_DIR.iterdir()):
        if path.suffix in _TYPES:
            body = path.read_bytes()
            found[path.name] = Asset(body, _TYPES[path.suffix], hashlib.sha256(body).hexdigest()[:12])
    return found


ASSETS: Final = _load()


def url(name: str) -> str:
    """`/checkout/static/checkout.css?v=<hash>`: a new file is a new URL."""
    return f"/checkout/static/{name}?v={ASSETS[name].version}"


def response(name: str) -> Response | None:
    asset = ASSETS.get(name)
    if asset is None:
        return None
    return Response(
        asset.body,
        media_type=asset.media_type,
        headers={
            "Cache-Control": "public, max-age=31536000, immutable",
            "ETag": f'"{asset.version}"',
            "X-Content-Type-Options": "nosniff",
        },
    )
