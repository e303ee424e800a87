"""API docs portal: Swagger UI over the generated OpenAPI document, and a page
of every service's RPCs with grpcurl and curl examples, behind Envoy at /docs.

Run it with ``python -m gateway.docs_portal`` (settings in
gateway/docs_portal/config.py); ``./mesh up`` starts it.
"""
