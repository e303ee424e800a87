"""Authentication and authorization of every RPC: one interceptor, one rule table.

Access tokens are JWTs (ES256) signed by the analytics service with the
mesh's private key and verified here with the public key set (JWKS), so any
service can check a token without calling another. Who may call what is
declared in the protos with the ``(mesh.auth.v1.access)`` method option; an
RPC without a rule is refused to everybody.
"""

from __future__ import annotations

import contextvars
import functools
import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import jwt
from google.protobuf import descriptor_pool

from mesh.auth.v1 import access_pb2
from mesh_runtime.errors import MeshError, PermissionDenied, Unauthenticated
from mesh_runtime.interceptors import UNGUARDED_PREFIXES, MeshInterceptor

logger = logging.getLogger("mesh.auth")

ALGORITHM = "ES256"
ROLE_NAMES: dict[int, str] = {
    access_pb2.ROLE_VIEWER: "viewer",
    access_pb2.ROLE_ANALYST: "analyst",
    access_pb2.ROLE_ADMIN: "admin",
}
ROLES_BY_NAME: dict[str, int] = {name: role for role, name in ROLE_NAMES.items()}
WWW_AUTHENTICATE = 'Bearer realm="analytics-mesh"'


@dataclass(frozen=True)
class Principal:
    """Who a verified token speaks for."""

    id: str
    name: str
    role: int
    service_account: bool = False
    # The user's token generation when the token was minted, and the session
    # (refresh-token chain) it belongs to: what revocations name.
    generation: int = 0
    session_id: str = ""

    @property
    def role_name(self) -> str:
        """viewer, analyst or admin."""
        return ROLE_NAMES.get(self.role, "none")


principal_var: contextvars.ContextVar[Principal | None] = contextvars.ContextVar("principal", default=None)


def current_principal() -> Principal:
    """The caller of the RPC being served (set by the auth interceptor)."""
    principal = principal_var.get()
    if principal is None:
        raise Unauthenticated("no authenticated caller")
    return principal


class KeySet:
    """Public keys that verify access tokens, by key id (kid)."""

    def __init__(self, keys: dict[str, Any]) -> None:
        self.keys = keys

    @classmethod
    def from_file(cls, path: Path) -> KeySet:
        """Read a JWKS file; ValueError with a one-line reason when unusable."""
        try:
            document = json.loads(path.read_text())
            keys = {entry["kid"]: jwt.PyJWK(entry).key for entry in document["keys"]}
        except FileNotFoundError:
            raise ValueError(f"no key set at {path}") from None
        except (OSError, ValueError, KeyError, TypeError, jwt.PyJWKError) as exc:
            raise ValueError(f"{path} is not a usable JWKS file ({exc})") from None
        if not keys:
            raise ValueError(f"{path} holds no keys")
        return cls(keys)


# A revocation's generation for "every token of this subject or session".
EVERY_TOKEN = 2**62


@dataclass(frozen=True)
class Revocation:
    """Tokens that stopped working before they expire.

    ``key`` is a user's or API key's id (the token's ``sub``) or a session id
    (its ``sid``); tokens of that key with a generation below
    ``min_generation`` are refused. After ``expire_time`` (epoch seconds) no
    token it covers is still valid, so it can be forgotten.
    """

    key: str
    min_generation: int
    expire_time: float

    def payload(self) -> str:
        """The text form a database notification carries."""
        return f"{self.key} {self.min_generation} {self.expire_time:.0f}"

    @classmethod
    def from_payload(cls, text: str) -> Revocation:
        """The revocation of ``payload()``'s text; ValueError if it is not one."""
        key, generation, expire = text.split(" ")
        return cls(key, int(generation), float(expire))


class Revocations:
    """The revocations a service knows of, checked on every call (two dict
    look-ups): kept current by whoever owns them (the analytics service
    loads them from its database and follows its notifications)."""

    def __init__(self) -> None:
        self._min_generation: dict[str, tuple[int, float]] = {}

    def replace(self, revocations: list[Revocation]) -> None:
        """Know exactly these (a full reload)."""
        now = time.time()
        self._min_generation = {r.key: (r.min_generation, r.expire_time) for r in revocations if r.expire_time > now}

    def add(self, revocation: Revocation) -> None:
        """Know one more (a notification); the highest generation per key wins."""
        known = self._min_generation.get(revocation.key)
        if known is None or known[0] < revocation.min_generation:
            self._min_generation[revocation.key] = (revocation.min_generation, revocation.expire_time)

    def __len__(self) -> int:
        return len(self._min_generation)

    def revoked(self, principal: Principal) -> bool:
        """Whether ``principal``'s token was revoked."""
        if not self._min_generation:
            return False
        by_subject = self._min_generation.get(principal.id)
        if by_subject is not None and principal.generation < by_subject[0]:
            return True
        return bool(principal.session_id) and principal.session_id in self._min_generation


class TokenVerifier:
    """Checks access tokens: signature by a known key, issuer, audience, expiry,
    and that nobody revoked them since (``revocations``).

    A client sends the same token on every call until it expires, so tokens
    that verified are remembered (bounded) with their expiry: the signature
    check, most of the cost, runs once per token rather than once per call.
    The revocation check runs on every call.
    """

    def __init__(
        self,
        keys: KeySet,
        issuer: str,
        audience: str,
        leeway_seconds: float = 5,
        cache_size: int = 4096,
        revocations: Revocations | None = None,
    ) -> None:
        self.keys = keys
        self.issuer = issuer
        self.audience = audience
        self.leeway = leeway_seconds
        self.cache_size = cache_size
        self.revocations = revocations if revocations is not None else Revocations()
        self._verified: OrderedDict[str, tuple[Principal, float]] = OrderedDict()
        self._lock = threading.Lock()

    def verify(self, token: str) -> Principal:
        """The principal of a valid token; Unauthenticated otherwise."""
        now = time.time()
        with self._lock:
            hit = self._verified.get(token)
            if hit is not None and hit[1] + self.leeway > now:
                self._verified.move_to_end(token)
                principal = hit[0]
            else:
                principal = None
        if principal is None:
            principal, expires = self._verify_signature(token)
            with self._lock:
                self._verified[token] = (principal, expires)
                while len(self._verified) > self.cache_size:
                    self._verified.popitem(last=False)
        if self.revocations.revoked(principal):
            raise _unauthenticated("token revoked (signed out, disabled, changed or revoked); sign in again")
        return principal

    def _verify_signature(self, token: str) -> tuple[Principal, float]:
        try:
            header = jwt.get_unverified_header(token)
            key = self.keys.keys.get(header.get("kid", ""))
            if key is None:
                raise _unauthenticated("token signed by an unknown key")
            claims = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": ["exp", "iat", "sub", "role"]},
            )
        except jwt.ExpiredSignatureError:
            raise _unauthenticated("token expired; sign in again or refresh the session") from None
        except jwt.InvalidTokenError as exc:
            raise _unauthenticated(f"invalid token: {exc}") from None
        role = ROLES_BY_NAME.get(str(claims.get("role")))
        if role is None:
            raise _unauthenticated("token carries no known role")
        principal = Principal(
            id=str(claims["sub"]),
            name=str(claims.get("name", "")),
            role=role,
            service_account=bool(claims.get("svc", False)),
            generation=int(claims.get("gen", 0)),
            session_id=str(claims.get("sid", "")),
        )
        return principal, float(claims["exp"])


def verifier_from_settings(jwks_file: str, issuer: str, audience: str) -> TokenVerifier:
    """The verifier a service's settings describe; ConfigError naming AUTH_JWKS_FILE if unusable."""
    from mesh_runtime.config import ConfigError

    if not jwks_file:
        raise ConfigError("AUTH_JWKS_FILE: not set; point it at the public key set (./mesh up makes one)")
    try:
        return TokenVerifier(KeySet.from_file(Path(jwks_file)), issuer, audience)
    except ValueError as exc:
        raise ConfigError(f"AUTH_JWKS_FILE: {exc}") from None


def _unauthenticated(message: str) -> MeshError:
    error = Unauthenticated(message)
    error.metadata = (("www-authenticate", WWW_AUTHENTICATE),)
    return error


@functools.lru_cache(maxsize=1024)
def access_rule(method: str) -> access_pb2.AccessRule | None:
    """The declared access rule of ``/package.Service/Method``, if any (rules
    are compiled into the protos, so each method's is looked up once)."""
    try:
        service, name = method.strip("/").split("/")
        descriptor = descriptor_pool.Default().FindMethodByName(f"{service}.{name}")
    except (ValueError, KeyError):
        return None
    options = descriptor.GetOptions()
    if not options.HasExtension(access_pb2.access):
        return None
    rule: access_pb2.AccessRule = options.Extensions[access_pb2.access]
    return rule


def bearer_token(metadata: Any) -> str | None:
    """The token of an ``authorization: Bearer <token>`` header, if present."""
    for key, value in metadata or ():
        if key == "authorization" and isinstance(value, str):
            scheme, _, token = value.strip().partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
    return None


class AuthInterceptor(MeshInterceptor):
    """Lets a call through only if its access rule allows the caller."""

    def __init__(self, verifier: TokenVerifier) -> None:
        self.verifier = verifier

    def applies_to(self, method: str) -> bool:
        return not method.startswith(UNGUARDED_PREFIXES)

    def scope(self, method: str, context: grpc.aio.ServicerContext) -> AbstractAsyncContextManager[None]:
        return _Authorized(self, method, context)

    def authorize(self, method: str, metadata: Any) -> Principal | None:
        """The caller if ``method`` may be called with ``metadata``; raises otherwise."""
        rule = access_rule(method)
        if rule is None:
            raise PermissionDenied(f"{method} declares no access rule, so nobody may call it")
        if rule.public:
            return None
        token = bearer_token(metadata)
        if token is None:
            raise _unauthenticated("sign in first: send 'authorization: Bearer <access token>'")
        principal = self.verifier.verify(token)
        if principal.role < rule.min_role:
            raise PermissionDenied(
                f"{principal.role_name} may not call {method.rsplit('/', 1)[-1]}; "
                f"it needs the {ROLE_NAMES.get(rule.min_role, '?')} role"
            )
        return principal


class _Authorized:
    """The caller of one call, authorized on entry and current until the call
    ends (a class: cheaper than a generator per call)."""

    __slots__ = ("context", "interceptor", "method", "token")

    def __init__(self, interceptor: AuthInterceptor, method: str, context: grpc.aio.ServicerContext) -> None:
        self.interceptor = interceptor
        self.method = method
        self.context = context

    async def __aenter__(self) -> None:
        principal = self.interceptor.authorize(self.method, self.context.invocation_metadata())
        self.token = principal_var.set(principal)

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, traceback: Any) -> bool:
        principal_var.reset(self.token)
        return False


def rule_table() -> Iterator[tuple[str, access_pb2.AccessRule | None]]:
    """Every RPC of the mesh's services with its access rule (None: missing)."""
    pool = descriptor_pool.Default()
    from mesh_runtime import contracts

    for service_name in contracts.SERVICE_NAMES:
        service = pool.FindServiceByName(service_name)
        for method in service.methods:
            yield f"/{service.full_name}/{method.name}", access_rule(f"/{service.full_name}/{method.name}")
