"""Shared runtime of every Analytics Mesh service.

Server bootstrap, interceptors, domain errors, configuration, logging,
database helpers and the gRPC client factory live here, so that each service
only wires its own store and servicers.
"""
