"""The client half of `gateway listen`: reading the events stream (Server-Sent Events) and printing
each event as one line."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import typer


def _sse_messages(lines: Iterable[str]) -> Iterator[tuple[str | None, str | None, str | None]]:
    """(id, data, comment) for each message of a Server-Sent Events stream."""
    event_id: str | None = None
    data: list[str] = []
    for line in lines:
        if line == "":
            if data:
                yield event_id, "\n".join(data), None
            event_id, data = None, []
        elif line.startswith(":"):
            yield None, None, line[1:].strip()
        else:
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "id":
                event_id = value
            elif name == "data":
                data.append(value)


def _event_line(event: dict[str, Any]) -> str:
    obj = event["data"]["object"]
    when = datetime.fromisoformat(event["created_at"]).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    status = obj.get("status") or "-"
    return f"{when}  {event['type']:<28} {obj.get('id', '-')}  {status:<18} {event['id']}"


@dataclass
class Listening:
    base: str
    events: str
    last_id: str | None = None
    delay: float = 1.0
    ready_once: bool = False


def listen_once(client: httpx.Client, api_key: str, state: Listening) -> str:
    """One connection: prints events until it ends, and says why it ended."""
    headers = {"Authorization": f"Bearer {api_key}", "Accept": "text/event-stream"}
    resume_after = state.last_id
    if resume_after is not None:
        headers["Last-Event-ID"] = resume_after
    with client.stream("GET", "/v1/events/stream", params={"type": state.events}, headers=headers) as r:
        if r.status_code != 200:
            r.read()
            if 400 <= r.status_code < 500:  # a bad key or filter: trying again will not help
                detail = r.json().get("detail", r.text) if r.content else r.reason_phrase
                typer.secho(f"{r.status_code}: {detail}", fg="red", err=True)
                raise typer.Exit(1)
            return f"HTTP {r.status_code}"
        for event_id, data, comment in _sse_messages(r.iter_lines()):
            if comment == "ready":
                state.delay = 1.0
                if not state.ready_once:
                    typer.echo(
                        f"Ready! Listening for {state.events} events on {state.base} (Ctrl-C to stop)",
                        err=True,
                    )
                elif resume_after is not None:
                    typer.echo(f"Reconnected; resumed after {resume_after}", err=True)
                state.ready_once = True
            elif data is not None:
                typer.echo(_event_line(json.loads(data)))
                state.last_id = event_id or state.last_id
    return "the stream ended"
