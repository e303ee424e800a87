"""gateway: the Envoy edge (gRPC-JSON transcoding to REST) and its config."""
