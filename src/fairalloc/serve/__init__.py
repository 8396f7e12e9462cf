"""fairalloc as a web service for systems not written in Python (the ``serve`` extra).

The service loads one or more policies at start (each with an optional resident pool, which it
evaluates and allocates once, and an optional decision log) and answers over JSON: validation,
evaluation and explanation of residents, allocation, the criteria document, audits, and the
decision log's operations. Every answer is what the library itself returns; every error is a
problem document (RFC 9457) with the error's ``code``, ``message`` and ``location``.

Safe by default: it listens on loopback; every route but ``/health`` needs a bearer token whose
hash the operator configured, with scopes (``read``, ``decide``, ``review``, ``admin``); a
token may speak for one resident only; request bodies, batches and computing time are bounded;
CORS is off unless origins are configured; the access log holds no personal data.

Start it with ``fairalloc serve CONFIG`` or :func:`run`; build the application for another
ASGI server with :func:`create_app`. See ``docs/service.md``.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from fairalloc._optional import require
from fairalloc.serve._config import (
    SCOPES,
    Limits,
    PolicyEntry,
    ServerSettings,
    ServiceConfig,
    TokenEntry,
    hash_token,
    load_config,
    new_token,
    parse_config,
)

if TYPE_CHECKING:
    import socket

    from fastapi import FastAPI

    from fairalloc.serve._service import Service

#: The logger of the access log: one JSON line per request, without personal data.
ACCESS_LOGGER = "fairalloc.serve.access"

__all__ = [
    "ACCESS_LOGGER",
    "SCOPES",
    "Limits",
    "PolicyEntry",
    "ServerSettings",
    "ServiceConfig",
    "TokenEntry",
    "create_app",
    "hash_token",
    "load_config",
    "load_service",
    "new_token",
    "openapi_document",
    "openapi_json",
    "parse_config",
    "run",
    "server_config",
]


def _need_extra(feature: str) -> None:
    for module in ("fastapi", "uvicorn"):
        require(module, extra="serve", feature=feature)


def load_service(config: ServiceConfig) -> Service:
    """Load the configuration's policies and evaluate and allocate their pools.

    Raises:
        PolicyError: if a policy file does not load.
        PopulationError: if a pool does not fit its policy.
    """
    from fairalloc.serve._service import Service

    return Service(config)


def create_app(config: ServiceConfig, service: Service | None = None) -> FastAPI:
    """The ASGI application (FastAPI) serving ``config``'s policies.

    Args:
        config: The configuration (:func:`load_config`).
        service: The policies already loaded (:func:`load_service`); loaded when not given.

    Raises:
        MissingDependency: ``FA910`` without the ``serve`` extra.
    """
    _need_extra("the web service")
    from fairalloc.serve._app import build_app

    return build_app(config, service)


def openapi_document(config: ServiceConfig | None = None) -> dict[str, Any]:
    """The service's OpenAPI document (the same whatever the policies served).

    Args:
        config: A configuration; without one, the document is made from an empty service.
    """
    _need_extra("the OpenAPI document")
    from fairalloc.serve._app import build_app
    from fairalloc.serve._service import Service

    if config is None:
        config = ServiceConfig.model_construct(
            policies=(), tokens=(), limits=Limits(), server=ServerSettings()
        )
    service = Service.__new__(Service)
    service.config, service.policies = config, {}
    doc: dict[str, Any] = build_app(config, service).openapi()
    return doc


def openapi_json(config: ServiceConfig | None = None) -> str:
    """The OpenAPI document as the committed ``docs/openapi.json`` holds it."""
    return json.dumps(openapi_document(config), indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def run(
    config: ServiceConfig,
    *,
    service: Service | None = None,
    sock: socket.socket | None = None,
    log_level: str = "info",
) -> None:
    """Serve ``config``'s policies with uvicorn until interrupted.

    Args:
        config: The configuration: policies, tokens, limits, host and port.
        service: The policies already loaded; loaded when not given.
        sock: A bound socket to serve on instead of ``config.server``'s host and port.
        log_level: uvicorn's log level.
    """
    _need_extra("fairalloc serve")
    import uvicorn

    server = uvicorn.Server(server_config(config, service=service, log_level=log_level))
    server.run(sockets=[sock] if sock is not None else None)


def server_config(
    config: ServiceConfig, *, service: Service | None = None, log_level: str = "info"
) -> Any:
    """The ``uvicorn.Config`` the service runs with (no access log of uvicorn's own)."""
    _need_extra("fairalloc serve")
    import uvicorn

    return uvicorn.Config(
        create_app(config, service),
        host=config.server.host,
        port=config.server.port,
        access_log=False,  # ours (fairalloc.serve.access) holds no addresses, paths or ids
        log_level=log_level,
        server_header=False,
        timeout_keep_alive=5,
        h11_max_incomplete_event_size=64 * 1024,
        limit_concurrency=1000,
    )
