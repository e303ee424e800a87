"""The whole mesh on one machine, without containers: the supervisor behind
``./mesh up`` and the test suite's session stack.

Development tooling: it starts PostgreSQL, NATS, the mail catcher, the
services, Envoy and the web app as child processes. No service, web or deploy
module imports it (tests/test_dev_tooling_imports.py checks that).
"""
