"""mail_catcher: an SMTP server that keeps what it receives and shows it over
HTTP with the part of mailpit's API v1 our tests and web app use, so the same
code works against mailpit in compose."""
