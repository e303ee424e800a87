# syntax=docker/dockerfile:1
# analytics: the analytics API (python -m analytics_svc), and with another command the scheduler (python -m analytics_svc.jobs.scheduler) the workers (python -m analytics_svc.jobs.worker), and the optional Dask scheduler and workers (dask scheduler, dask worker).
# Build from the repository root: docker build -f deploy/docker/analytics.Dockerfile .

# --- build: the run-time packages in a virtual environment, hash-checked ---
FROM python:3.11.14-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
COPY deploy/requirements/services.txt /tmp/requirements.txt
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir --require-hashes -r /tmp/requirements.txt

# --- run: the venv and the code, as an unprivileged user ---
FROM python:3.11.14-slim-bookworm
RUN groupadd --system --gid 10001 mesh \
    && useradd --system --uid 10001 --gid mesh --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin mesh \
    && install -d -o 10001 -g 10001 -m 0755 /run/mesh-auth /run/mesh-jwks
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY --chown=root:root gen/python gen/python
COPY --chown=root:root mesh_runtime mesh_runtime
COPY --chown=root:root analytics_svc analytics_svc
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app:/app/gen/python \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MESH_GRPC_HOST=0.0.0.0
USER 10001:10001
EXPOSE 50051
# The API's health, or with MESH_HEALTH_PORT set (scheduler, workers) that port's.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["sh", "-c", "exec python -m mesh_runtime.healthcheck \"127.0.0.1:${MESH_HEALTH_PORT:-${ANALYTICS_GRPC_PORT:-50051}}\""]
CMD ["python", "-m", "analytics_svc"]
