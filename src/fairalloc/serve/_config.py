"""The service's configuration: policies to load, tokens and their scopes, limits, CORS.

An operator writes it as TOML or JSON (see ``docs/service.md``). Tokens are never stored: the
file holds the SHA-256 of each (:func:`hash_token`), so a leaked configuration gives no access.
Paths are read relative to the configuration file.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from fairalloc.errors import ServiceError

__all__ = [
    "SCOPES",
    "Limits",
    "PolicyEntry",
    "Scope",
    "ServerSettings",
    "ServiceConfig",
    "TokenEntry",
    "hash_token",
    "load_config",
    "new_token",
]

#: What a token may do. ``admin`` includes the three others.
Scope = Literal["read", "decide", "review", "admin"]
SCOPES: tuple[str, ...] = ("read", "decide", "review", "admin")

_NAME = r"^[a-z0-9][a-z0-9-]{0,62}$"


def hash_token(token: str) -> str:
    """The SHA-256 (hex) of a bearer token, as the configuration stores it."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> tuple[str, str]:
    """A fresh random bearer token (256 bits, URL-safe) and its hash for the configuration."""
    token = secrets.token_urlsafe(32)
    return token, hash_token(token)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TokenEntry(_Strict):
    """One caller's bearer token.

    Attributes:
        name: A label for the access log (never the token).
        sha256: The token's SHA-256 in hex (:func:`hash_token`).
        scopes: What the caller may do: ``read`` (validate, evaluate, explain, allocate,
            criteria, receipts, the log's head), ``decide`` (freeze, draw, decide, round),
            ``review`` (open, answer and list cases), ``admin`` (all of these, audits, the log's
            records, verification, registering a policy version).
        resident: When set, the token speaks for this one resident: it reads that resident's
            own evaluation, explanation and receipt and nothing that names anybody else.
        policies: The policies (by name) it may use; every policy when empty.
    """

    name: Annotated[str, Field(min_length=1, max_length=80)]
    sha256: str
    scopes: Annotated[tuple[Scope, ...], Field(min_length=1)]
    resident: str | None = None
    policies: tuple[str, ...] = ()

    @field_validator("sha256")
    @classmethod
    def _hex(cls, v: str) -> str:
        if not re.fullmatch(r"[0-9a-f]{64}", v):
            raise ValueError("the SHA-256 of the token as 64 lower-case hex digits")
        return v


class Limits(_Strict):
    """What one request may ask for.

    Attributes:
        max_body_bytes: The largest request body accepted (413 beyond).
        max_batch: The most residents one request may carry (413 beyond).
        timeout_seconds: How long one request may compute before it is answered 503.
        workers: How many requests compute at once (threads); others wait their turn.
    """

    max_body_bytes: Annotated[int, Field(ge=1024, le=1 << 30)] = 1 << 20
    max_batch: Annotated[int, Field(ge=1, le=1_000_000)] = 1000
    timeout_seconds: Annotated[float, Field(gt=0, le=3600)] = 30.0
    workers: Annotated[int, Field(ge=1, le=256)] = 8


class ServerSettings(_Strict):
    """Where the service listens and what it tells browsers.

    Attributes:
        host: The address to bind (loopback by default).
        port: The TCP port.
        cors_origins: Origins a browser may call from; none (CORS off) by default.
        access_log: Write one structured line per request to the ``fairalloc.serve.access``
            logger (method, route template, status, duration, sizes, the token's name).
    """

    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 8000
    cors_origins: tuple[str, ...] = ()
    access_log: bool = True


class PolicyEntry(_Strict):
    """One policy the service loads at start.

    Attributes:
        name: Its name in URLs (``/v1/policies/NAME/...``).
        file: The policy file.
        residents: The resident pool (CSV, Parquet, ...) evaluated, allocated and explained
            at start; the applicants of the decision log's operations by default.
        log: The decision log (a file, ``sqlite:///path`` or ``postgresql://...``).
        capacity: Units the pool's allocation uses (the policy's by default).
    """

    name: Annotated[str, Field(pattern=_NAME)]
    file: Path
    residents: Path | None = None
    log: str | None = None
    capacity: Annotated[int, Field(ge=0)] | None = None


class ServiceConfig(_Strict):
    """The whole configuration (:func:`load_config` reads it from a file).

    Attributes:
        policies: The policies to serve (at least one; names unique).
        tokens: The callers (no token, no access: every endpoint but ``/health`` asks for one).
        limits: Request limits.
        server: Address, port, CORS and access log.
    """

    policies: Annotated[tuple[PolicyEntry, ...], Field(min_length=1)]
    tokens: tuple[TokenEntry, ...] = ()
    limits: Limits = Limits()
    server: ServerSettings = ServerSettings()

    @field_validator("policies")
    @classmethod
    def _unique(cls, v: tuple[PolicyEntry, ...]) -> tuple[PolicyEntry, ...]:
        names = [p.name for p in v]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"policy names must be unique: {', '.join(twice)}")
        return v

    @field_validator("tokens")
    @classmethod
    def _unique_tokens(cls, v: tuple[TokenEntry, ...]) -> tuple[TokenEntry, ...]:
        hashes = [t.sha256 for t in v]
        if len(set(hashes)) != len(hashes):
            raise ValueError("two tokens have the same hash")
        return v

    def resolved(self, base: Path) -> ServiceConfig:
        """The configuration with its file paths made absolute against ``base``."""

        def at(p: Path | None) -> Path | None:
            return None if p is None else (p if p.is_absolute() else base / p)

        def log_at(url: str | None) -> str | None:
            if url is None or "://" in url or Path(url).is_absolute():
                return url
            return str(base / url)

        policies = tuple(
            p.model_copy(
                update={"file": at(p.file), "residents": at(p.residents), "log": log_at(p.log)}
            )
            for p in self.policies
        )
        return self.model_copy(update={"policies": policies})


def _location(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def parse_config(doc: Any, *, base: Path | None = None, source: str = "<config>") -> ServiceConfig:
    """Check a configuration document (the parsed TOML or JSON).

    Raises:
        ServiceError: ``FA940`` naming the first entry that is wrong.
    """
    try:
        config = ServiceConfig.model_validate(doc)
    except ValidationError as e:
        first = e.errors()[0]
        where = _location(tuple(first["loc"]))
        raise ServiceError(
            "FA940",
            f"{source}: {first['msg']}"
            + (f" ({len(e.errors()) - 1} more problems)" if len(e.errors()) > 1 else ""),
            status=500,
            location=where,
        ) from None
    return config.resolved(base) if base is not None else config


def load_config(path: str | Path) -> ServiceConfig:
    """Read the configuration from a ``.toml`` or ``.json`` file.

    Raises:
        ServiceError: ``FA940`` if it cannot be read or is not a valid configuration.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ServiceError(
            "FA940", f"cannot read the configuration: {e}", location=str(path)
        ) from None
    try:
        doc = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as e:
        raise ServiceError(
            "FA940",
            f"the configuration is not valid {path.suffix.lstrip('.').upper() or 'TOML'}: {e}",
            location=str(path),
        ) from None
    return parse_config(doc, base=path.resolve().parent, source=str(path))
