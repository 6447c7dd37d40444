"""structlog JSON logs; request_id, merchant_id and payment_id ride along through contextvars."""

from __future__ import annotations

import logging
import sys
from typing import Any

import orjson
import structlog

_SECRET_KEYS = frozenset(
    {"authorization", "api_key", "secret", "password", "webhook_secret", "card_number", "cvc", "key"}
)


def _redact(_: Any, __: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    # Defence in depth: a secret passed by mistake as a log field never reaches the sink.
    for k in event_dict.keys() & _SECRET_KEYS:
        event_dict[k] = "[redacted]"
    return event_dict


# The level configure_logging set (0 until it runs: structlog's default logs everything).
_level = 0


def enabled(level: int) -> bool:
    """Whether lines of `level` are written: a caller on the hot path skips building one that would
    be dropped (the access log: a filtered call still costs a lazy logger's lookup and its fields)."""
    return level >= _level


def configure_logging(level: str = "INFO", json: bool = True) -> None:
    global _level
    _level = logging.getLevelName(level)
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _redact,
        structlog.processors.format_exc_info,
    ]
    factory: Any
    stream = getattr(sys.stderr, "buffer", None)
    if json and stream is not None:
        # orjson renders bytes written straight to the stream: a line per request is on the hot path.
        processors.append(structlog.processors.JSONRenderer(serializer=_orjson_dumps))
        factory = structlog.BytesLoggerFactory(stream)
    elif json:
        processors.append(structlog.processors.JSONRenderer())
        factory = structlog.PrintLoggerFactory(sys.stderr)
    else:
        processors.append(structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty()))
        factory = structlog.PrintLoggerFactory(sys.stderr)
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(_level),
        logger_factory=factory,
        cache_logger_on_first_use=True,
    )


def _orjson_dumps(value: Any, default: Any = None, **_: Any) -> bytes:
    # default=str as the stdlib renderer's: an odd value (a Decimal, an exception) is logged as text.
    return orjson.dumps(value, default=default or str)


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    logger: structlog.stdlib.BoundLogger = structlog.get_logger(name)
    return logger
