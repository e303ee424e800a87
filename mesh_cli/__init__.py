"""The ``mesh`` command: local stack supervisor, tests, code generation."""
