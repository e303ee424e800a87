"""Links in e-mails: the result in the web app, and signed unsubscribe links:
the RFC 8058 one-click URL (REST, a POST unsubscribes; the List-Unsubscribe
header) and the web app's confirmation page (the body's link).

An unsubscribe token is ``<subscription id>.<HMAC-SHA256 of it>`` (base64url,
keyed with NOTIFY_LINK_SECRET), so it works without signing in and cannot be
made up for another subscription.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import uuid
from pathlib import Path
from urllib.parse import quote, urlencode

from mesh_runtime.errors import FieldViolation, InvalidArgument

_PURPOSE = b"mesh.notify.unsubscribe.v1:"


def _signature(secret: str, subscription_id: str) -> str:
    digest = hmac.new(secret.encode(), _PURPOSE + subscription_id.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def unsubscribe_token(secret: str, subscription_id: uuid.UUID | str) -> str:
    """The token that ends ``subscription_id``."""
    sub = str(uuid.UUID(str(subscription_id)))
    return f"{sub}.{_signature(secret, sub)}"


def verify_unsubscribe_token(secret: str, token: str) -> str:
    """The subscription id a genuine token names; InvalidArgument otherwise."""
    sub, _, signature = token.strip().partition(".")
    try:
        sub = str(uuid.UUID(sub))
    except ValueError:
        sub = ""
    if not sub or not hmac.compare_digest(signature.encode(), _signature(secret, sub).encode()):
        raise InvalidArgument(
            "this unsubscribe link is not valid",
            violations=[FieldViolation("token", "not a genuine unsubscribe token")],
        )
    return sub


def unsubscribe_url(rest_base_url: str, secret: str, subscription_id: uuid.UUID | str) -> str:
    """The public REST URL (through Envoy) that ends the subscription."""
    return f"{rest_base_url}/v1/unsubscribe?{urlencode({'token': unsubscribe_token(secret, subscription_id)})}"


def unsubscribe_page_url(web_base_url: str, secret: str, subscription_id: uuid.UUID | str) -> str:
    """The web app's public page where a person confirms the unsubscribe (its GET changes nothing)."""
    return f"{web_base_url}/unsubscribe?{urlencode({'token': unsubscribe_token(secret, subscription_id)})}"


def result_url(web_base_url: str, result_id: str) -> str:
    """The result's page in the web app."""
    return f"{web_base_url}/results/{quote(result_id, safe='')}"


def local_link_secret(path: Path) -> str:
    """The local stack's link secret: read from ``path``, made (random, owner-only) on first use."""
    try:
        secret = path.read_text().strip()
    except FileNotFoundError:
        secret = ""
    if len(secret) >= 32:
        return secret
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(secret + "\n")
    return secret
