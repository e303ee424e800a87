# syntax=docker/dockerfile:1
# envoy for Kubernetes: the official image with the rendered config and the
# descriptor set baked in (compose mounts the same two files into the same image).
# Build from the repository root: docker build -f deploy/docker/envoy.Dockerfile .
# The public key set is mounted at /run/mesh-auth/jwks.json from a Secret.
FROM envoyproxy/envoy:v1.40.0
COPY deploy/compose/envoy.json /etc/envoy/envoy.json
COPY gen/descriptor.binpb /etc/envoy/descriptor.binpb
# The image's entrypoint drops to this uid (the "envoy" user) before starting Envoy.
ENV ENVOY_UID=101 \
    ENVOY_GID=101
USER 101:101
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
    CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/9901 && printf 'GET /ready HTTP/1.0\\r\\n\\r\\n' >&3 && grep -q LIVE <&3"]
CMD ["envoy", "-c", "/etc/envoy/envoy.json", "--log-level", "warn"]
