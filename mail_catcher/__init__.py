"""mail_catcher: a small SMTP server for local runs and tests.

It keeps every message it receives (in memory, optionally on disk) and shows
them over HTTP with the part of mailpit's API v1 our tests and web app use,
in mailpit's JSON shapes, so the same client code works against mailpit in
compose. Like mailpit with ``--ignore-duplicate-ids`` it can drop a message
whose Message-ID it already holds (``./mesh up`` turns that on). Run it with
``python -m mail_catcher --help``.
"""
