# syntax=docker/dockerfile:1
#
# docker build -t realtime-server .
# docker run --rm -p 8000:8000 --env-file .env realtime-server            # the HTTP server
# docker run --rm --env-file .env realtime-server python -m workers       # the worker
# docker run --rm --env-file .env realtime-server python -m server db migrate
#
# Layout, and why: server/dbadmin.py finds pyproject.toml ([tool.alembic]) and migrations/
# relative to the parent directory of the imported `server` package
# (PROJECT_ROOT = Path(server/dbadmin.py).parent.parent). A normal `pip install .` would put
# `server` in site-packages, where neither file exists. So the image keeps the project where
# it is in a checkout: sources, pyproject.toml and migrations/ side by side in /app, found
# through PYTHONPATH=/app (which also works when the working directory is not /app). The venv
# holds only the third-party dependencies; the project itself is deliberately not installed
# into it, so there is exactly one copy of the code and nothing in site-packages can shadow it.

ARG PYTHON_IMAGE=python:3.11-slim

# -- builder: a venv with the locked dependencies (requirements.lock) --------------------------
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /build
# Only the lock file: this layer is rebuilt when the dependencies change, not on every code
# edit. requirements.lock holds the exact versions with their hashes (`make lock` writes it
# from pyproject.toml's ranges), so every build installs the same thing.
COPY requirements.lock ./
RUN pip install --no-cache-dir --require-hashes -r requirements.lock

# -- runtime --------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
    HOST=0.0.0.0 \
    PORT=8000

RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /app --no-create-home \
       --shell /usr/sbin/nologin app

COPY --from=builder /opt/venv /opt/venv

WORKDIR /app
# Owned by root and read-only for the app user. Settings come from the environment only:
# .env is excluded by .dockerignore, so no secret is baked into the image.
COPY pyproject.toml ./
COPY migrations/ migrations/
COPY server/ server/
COPY handlers/ handlers/
COPY storage/ storage/
COPY workers/ workers/
COPY signaling/ signaling/
# /app is not writable at runtime, so compile the bytecode now.
RUN python -m compileall -q /app

# Uploaded files are the one thing the server writes: a directory of its own, owned by the
# app user and declared a volume (a new named volume starts with this ownership). Every
# server node must see the same files: mount shared storage here when running several.
RUN mkdir -p /data/uploads && chown app:app /data/uploads
ENV UPLOAD_DIR=/data/uploads
VOLUME ["/data/uploads"]

USER app

EXPOSE 8000

# No curl in slim images: the standard library does the request (proxies ignored on purpose).
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as u; u.build_opener(u.ProxyHandler({})).open('http://127.0.0.1:%s/health/live' % os.environ.get('PORT', '8000'), timeout=4)"]

CMD ["python", "-m", "server", "serve"]
