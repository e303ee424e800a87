"""The Analytics Mesh web app: a Reflex front end and gRPC client of the services."""
