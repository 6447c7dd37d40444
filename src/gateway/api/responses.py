"""The JSON answer of every endpoint: a model's bytes, rendered once by pydantic (no re-validation)."""

from __future__ import annotations

from pydantic import BaseModel
from starlette.responses import Response


def json_response(model: BaseModel, status: int = 200) -> Response:
    return Response(model.model_dump_json().encode(), status_code=status, media_type="application/json")
