# syntax=docker/dockerfile:1.7
# The Backlot control plane: one image for the API (uvicorn), the Celery workers, the single
# beat and the migrations Job. Build from the repository root:
#   docker build -f infra/images/control-plane.Dockerfile -t backlot/control-plane:0.1.0 .
# Pins: exact tags here; replace each with `tag@sha256:<digest>` when publishing
# (`docker buildx imagetools inspect <image:tag>` prints the digest).

FROM ghcr.io/astral-sh/uv:0.13.9 AS uv

FROM python:3.11.18-slim-bookworm AS builder
COPY --from=uv /uv /usr/local/bin/uv
# Bytecode compiled at build time: the runtime root filesystem is read-only, so Python could
# not write its caches there anyway.
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3.11 \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /src
# Dependencies first, from the committed lock only, so a source change reuses this layer.
COPY pyproject.toml uv.lock README.md ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable --no-install-project
COPY control_plane ./control_plane
COPY tenant_runtime ./tenant_runtime
COPY billing ./billing
# --no-editable: the project is installed into the venv as a wheel, so the runtime stage
# needs the venv only, not the source tree.
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable

FROM python:3.11.18-slim-bookworm AS runtime
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="backlot-control-plane" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.source="https://github.com/backlot/backlot"
# A fixed numeric UID/GID, so Kubernetes' runAsNonRoot can verify it without /etc/passwd.
RUN groupadd --system --gid 10001 backlot \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/backlot --no-create-home \
       --shell /usr/sbin/nologin backlot \
    && install -d -o 10001 -g 10001 -m 0750 /var/lib/backlot
COPY --from=builder /app/.venv /app/.venv
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    BACKLOT_DATA_DIR=/var/lib/backlot \
    BACKLOT_HOST=0.0.0.0 \
    BACKLOT_PORT=8000 \
    BACKLOT_LOG_FORMAT=json \
    TMPDIR=/tmp
WORKDIR /var/lib/backlot
USER 10001:10001
EXPOSE 8000
# Only the API answers HTTP; Kubernetes ignores HEALTHCHECK and probes the pods itself.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ.get('BACKLOT_PORT', '8000')}/healthz\", timeout=4)"]
# No fixed entrypoint: the command is `backlot migrate`, `uvicorn ...` or `celery ...`.
ENTRYPOINT []
CMD ["uvicorn", "control_plane.app:create_app", "--factory", "--host", "0.0.0.0", "--port", "8000", "--no-access-log"]
