"""``fairalloc serve CONFIG``: serve the configured policies over HTTP (the ``serve`` extra)."""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

from fairalloc.cli._common import count
from fairalloc.errors import UsageError

__all__ = ["register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``serve`` command."""
    p = sub.add_parser(
        "serve", help="serve policies over HTTP: JSON, bearer tokens, problem documents"
    )
    p.add_argument(
        "config", type=Path, nargs="?", help="the service's configuration (.toml or .json)"
    )
    p.add_argument("--host", default=None, help="address to listen on (default: the config's)")
    p.add_argument("--port", type=count(), default=None, help="port (default: the config's)")
    p.add_argument(
        "--check",
        action="store_true",
        help="load the configuration and the policies, print what would be served, and stop",
    )
    p.add_argument(
        "--new-token",
        action="store_true",
        help="print a new random token and the hash to put in the configuration, and stop",
    )
    p.set_defaults(handler=handle, inputs=())


def handle(args: argparse.Namespace) -> int:
    """Run the command."""
    from fairalloc import serve

    if args.new_token:
        token, digest = serve.new_token()
        print(f"token (give it to the caller, keep it nowhere else): {token}")
        print(f'sha256 = "{digest}"')
        return 0
    if args.config is None:
        raise UsageError("give the configuration file: fairalloc serve CONFIG")
    config = serve.load_config(args.config)
    update = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    if update:
        config = config.model_copy(update={"server": config.server.model_copy(update=update)})
    service = serve.load_service(config)
    for row in service.listing():
        pool = f", pool of {row['pool']} residents" if row["pool"] is not None else ""
        log = ", decision log" if row["log"] else ""
        print(f"{row['name']}: {row['id']} v{row['version']}{pool}{log}", file=sys.stdout)
    if not config.tokens:
        print(
            "warning: no tokens are configured: every route but /health and /openapi.json refuses",
            file=sys.stdout,
        )
    if args.check:
        return 0
    _access_log()
    print(
        f"serving on http://{config.server.host}:{config.server.port}", file=sys.stdout, flush=True
    )
    with contextlib.suppress(KeyboardInterrupt):  # uvicorn stops cleanly, then passes it on
        serve.run(config, service=service)
    print("stopped", file=sys.stdout)
    return 0


def _access_log() -> None:
    """The access log's lines (JSON, no personal data) on standard error."""
    import logging

    from fairalloc.serve import ACCESS_LOGGER

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    for name in (ACCESS_LOGGER, "fairalloc.serve"):
        logger = logging.getLogger(name)
        logger.setLevel(logging.INFO)
        logger.addHandler(handler)
        logger.propagate = False
