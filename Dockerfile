# syntax=docker/dockerfile:1
# Production image: the gateway only. PostgreSQL and Redis come from the operator (see compose.yaml).

FROM python:3.12-slim AS build
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never PIP_DISABLE_PIP_VERSION_CHECK=1
# uv only installs what uv.lock pins (with hashes); pinned itself so a build is repeatable.
ARG UV_VERSION=0.13.9
RUN pip install --no-cache-dir "uv==${UV_VERSION}"
WORKDIR /app
COPY pyproject.toml uv.lock README.md ./
# Dependencies first, so code changes do not reinstall them; no dev tools, no embedded servers.
RUN uv sync --frozen --no-default-groups --no-install-project
COPY src ./src
RUN uv sync --frozen --no-default-groups --no-editable

FROM python:3.12-slim AS runtime
RUN groupadd --system --gid 10001 gateway \
    && useradd --system --uid 10001 --gid 10001 --home-dir /app --shell /usr/sbin/nologin gateway
WORKDIR /app
COPY --from=build /app/.venv /app/.venv
COPY alembic.ini ./
COPY alembic ./alembic
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    GATEWAY_HOST=0.0.0.0 \
    GATEWAY_PORT=8000 \
    GATEWAY_ENVIRONMENT=production
# Numeric, so the runtime knows it is not root without reading /etc/passwd (Kubernetes runAsNonRoot).
USER 10001:10001
EXPOSE 8000
# The port the gateway serves on (GATEWAY_PORT, as `gateway serve` reads it); an error status fails too.
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as u; u.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('GATEWAY_PORT', '8000'), timeout=2)"]
# uvicorn handles SIGTERM: it stops accepting, finishes in-flight requests, then runs the shutdown.
CMD ["gateway", "serve"]
