"""Credentials the local stack makes on its first start and keeps in the
state folder (``credentials.json``, 0600): the PostgreSQL superuser's
password and NATS's login. Nothing else stores them; delete the file and the
next ``./mesh up`` makes new ones (and gives them to both servers)."""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path

FILE_NAME = "credentials.json"
NATS_USER = "mesh"


@dataclass(frozen=True)
class LocalCredentials:
    """What the local PostgreSQL and NATS ask of whoever connects."""

    postgres_password: str
    nats_password: str
    nats_user: str = NATS_USER

    @property
    def nats_login(self) -> tuple[str, str]:
        return self.nats_user, self.nats_password

    @classmethod
    def load(cls, state_dir: Path) -> LocalCredentials | None:
        """The credentials kept in ``state_dir``, if a stack ever started there."""
        try:
            return cls(**json.loads((state_dir / FILE_NAME).read_text()))
        except FileNotFoundError:
            return None

    @classmethod
    def ensure(cls, state_dir: Path) -> LocalCredentials:
        """The credentials kept in ``state_dir``, made (and written 0600) on first use."""
        found = cls.load(state_dir)
        if found is not None:
            return found
        made = cls(postgres_password=secrets.token_urlsafe(24), nats_password=secrets.token_urlsafe(24))
        state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = state_dir / f".{FILE_NAME}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(asdict(made), out, indent=2)
        tmp.replace(state_dir / FILE_NAME)
        return made
