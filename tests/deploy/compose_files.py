"""Read compose files the way docker compose does, without Docker: YAML with
merge keys and the ``!override``/``!reset`` tags, the compose-spec merge rules
for override files, and ``${VAR}`` interpolation (``:-`` defaults, ``:?``
required)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
COMPOSE_PROD = ROOT / "docker-compose.prod.yml"
COMPOSE_ENV_EXAMPLE = ROOT / "deploy" / "compose.env.example"
SETTINGS_EXAMPLE = ROOT / ".env.example"


@dataclass(frozen=True)
class Override:
    """``!override VALUE``: replaces what earlier files set."""

    value: Any


@dataclass(frozen=True)
class Reset:
    """``!reset``: removes what earlier files set."""


class _Loader(yaml.SafeLoader):
    pass


def _override(loader: yaml.SafeLoader, node: yaml.Node) -> Override:
    if isinstance(node, yaml.MappingNode):
        return Override(loader.construct_mapping(node, deep=True))
    if isinstance(node, yaml.SequenceNode):
        return Override(loader.construct_sequence(node, deep=True))
    return Override(loader.construct_scalar(node))  # type: ignore[arg-type]


_Loader.add_constructor("!override", _override)
_Loader.add_constructor("!reset", lambda _loader, _node: Reset())


def load(path: Path) -> dict[str, Any]:
    """One compose file as written (tags kept as Override/Reset)."""
    data = yaml.load(path.read_text(), Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    assert isinstance(data, dict), f"{path} is not a mapping"
    return data


def untagged(value: Any) -> Any:
    """The file's content with the tags replaced by their values (for the schema)."""
    if isinstance(value, Override):
        return untagged(value.value)
    if isinstance(value, Reset):
        return None
    if isinstance(value, dict):
        return {k: untagged(v) for k, v in value.items() if not isinstance(v, Reset)}
    if isinstance(value, list):
        return [untagged(v) for v in value]
    return value


# Sequences replaced, not appended, when an override file sets them.
_REPLACED = {"command", "entrypoint"}
# Sequences whose entries are unique by a key (a later entry with the same key wins).
_UNIQUE_BY = {"volumes": "target", "secrets": "target", "configs": "target"}


def _volume_target(entry: Any) -> str:
    if isinstance(entry, dict):
        return str(entry.get("target"))
    parts = str(entry).split(":")
    return parts[1] if len(parts) > 1 else parts[0]


def merge(base: Any, override: Any, key: str = "") -> Any:
    """``override`` merged onto ``base`` by the compose-spec merge rules."""
    if isinstance(override, Override):
        return untagged(override.value)
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for k, v in override.items():
            if isinstance(v, Reset):
                merged.pop(k, None)
            elif k in merged:
                merged[k] = merge(merged[k], v, k)
            else:
                merged[k] = untagged(v)
        return merged
    if isinstance(base, list) and isinstance(override, list):
        if key in _REPLACED:
            return untagged(override)
        if key in _UNIQUE_BY:
            by_target = {_volume_target(e): e for e in base}
            by_target.update({_volume_target(e): untagged(e) for e in override})
            return list(by_target.values())
        return [*base, *untagged(override)]
    if key == "test":  # healthcheck.test is replaced whatever its form
        return untagged(override)
    return untagged(override)


_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)")


class MissingVariable(ValueError):
    """A ``${VAR:?message}`` whose variable is unset or empty."""


def interpolate(value: Any, env: Mapping[str, str]) -> Any:
    """``value`` with ``${VAR}``, ``${VAR:-default}`` and ``${VAR:?message}`` resolved."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(4)
        op, arg = match.group(2), match.group(3) or ""
        current = env.get(name)
        if op in (":?", "?") and not current and not (op == "?" and current is not None):
            raise MissingVariable(f"{name}: {arg}")
        if op in (":-", "-") and not current and not (op == "-" and current is not None):
            return arg
        return current or ""

    return _VARIABLE.sub(replace, value.replace("$$", "\0")).replace("\0", "$")


def variables(value: Any) -> set[str]:
    """Every ``${VAR}`` a file reads."""
    if isinstance(value, dict):
        return set().union(*(variables(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(variables(v) for v in value)) if value else set()
    if isinstance(value, (Override,)):
        return variables(value.value)
    if not isinstance(value, str):
        return set()
    return {m.group(1) or m.group(4) for m in _VARIABLE.finditer(value.replace("$$", ""))}


def documented(path: Path) -> set[str]:
    """Variables an env-example file documents (``NAME=`` lines)."""
    return {m.group(1) for m in re.finditer(r"^([A-Z][A-Z0-9_]*)=", path.read_text(), re.MULTILINE)}


def required_variables() -> set[str]:
    """Variables compose refuses to start without (``${VAR:?message}``)."""
    text = COMPOSE.read_text() + COMPOSE_PROD.read_text()
    return set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*):\?", text))


def example_env() -> dict[str, str]:
    """deploy/compose.env.example as a user's .env: the required secrets filled in."""
    env = {}
    required = required_variables()
    for line in COMPOSE_ENV_EXAMPLE.read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            name, _, value = line.partition("=")
            if not value and name in required:
                value = f"example-{name.lower()}-0123456789abcdef0123456789"
            env[name] = value
    return env


def active_services(model: Mapping[str, Any], profiles: tuple[str, ...] = ()) -> dict[str, dict[str, Any]]:
    """Services `docker compose up` starts with these profiles enabled."""
    return {
        name: service
        for name, service in model["services"].items()
        if not service.get("profiles") or set(service["profiles"]) & set(profiles)
    }
