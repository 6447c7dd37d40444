"""`JSONBytes` answers what Starlette's `Response(body, status_code, media_type="application/json")`
answers: the same ASGI messages, header for header."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.background import BackgroundTask
from starlette.responses import Response

from gateway.api.responses import JSONBytes


async def _messages(response: Response) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def send(message: Any) -> None:
        sent.append(message)

    async def receive() -> Any:
        raise AssertionError("an answer reads nothing")

    await response({"type": "http", "method": "GET", "path": "/"}, receive, send)
    return sent


@pytest.mark.parametrize(
    ("body", "status"), [(b"", 200), (b'{"status":"ok"}', 200), (b"[" + b"1," * 5000 + b"1]", 503)]
)
async def test_the_same_messages_as_starlettes_response(body: bytes, status: int) -> None:
    ours = await _messages(JSONBytes(body, status))
    theirs = await _messages(Response(body, status_code=status, media_type="application/json"))
    assert ours == theirs
    assert ours[0]["headers"] == [
        (b"content-length", str(len(body)).encode()),
        (b"content-type", b"application/json"),
    ]


async def test_its_background_task_runs_after_the_answer() -> None:
    ran: list[str] = []
    sent = await _messages(JSONBytes(b"{}", background=BackgroundTask(ran.append, "done")))
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    assert ran == ["done"]
