# syntax=docker/dockerfile:1.7
# The tenant runtime: one organization's portal. The Kubernetes driver runs it twice per pod,
# `args: ["migrate"]` in an init container and `args: ["serve"]` in the portal container.
# Build from the repository root:
#   docker build -f infra/images/tenant-runtime.Dockerfile -t backlot/tenant-runtime:0.1.0 .
# Pins: exact tags here; replace each with `tag@sha256:<digest>` when publishing.

FROM ghcr.io/astral-sh/uv:0.13.9 AS uv

FROM python:3.11.18-slim-bookworm AS builder
COPY --from=uv /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3.11 \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /src
COPY pyproject.toml uv.lock README.md ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable --no-install-project
# The wheel holds all three packages (pyproject's wheel target); the runtime imports only
# tenant_runtime, and never control_plane.
COPY control_plane ./control_plane
COPY tenant_runtime ./tenant_runtime
COPY billing ./billing
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable

FROM python:3.11.18-slim-bookworm AS runtime
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="backlot-tenant-runtime" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.source="https://github.com/backlot/backlot"
# pysaml2 signs and verifies SAML messages with the xmlsec1 binary (pinned Debian version).
RUN apt-get update \
    && apt-get install -y --no-install-recommends xmlsec1=1.2.37-2 \
    && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 backlot \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/backlot --no-create-home \
       --shell /usr/sbin/nologin backlot \
    && install -d -o 10001 -g 10001 -m 0750 /var/lib/backlot
COPY --from=builder /app/.venv /app/.venv
# The same directory the driver mounts an emptyDir on (BACKLOT_RUNTIME_DATA_DIR).
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    BACKLOT_RUNTIME_DATA_DIR=/var/lib/backlot \
    BACKLOT_RUNTIME_DATABASE_URL=sqlite:////var/lib/backlot/runtime.db \
    BACKLOT_RUNTIME_HOST=0.0.0.0 \
    BACKLOT_RUNTIME_PORT=7007 \
    BACKLOT_RUNTIME_LOG_FORMAT=json \
    TMPDIR=/tmp
WORKDIR /var/lib/backlot
USER 10001:10001
EXPOSE 7007
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ.get('BACKLOT_RUNTIME_PORT', '7007')}/healthz\", timeout=4)"]
ENTRYPOINT ["python", "-m", "tenant_runtime"]
CMD ["serve"]
