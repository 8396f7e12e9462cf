"""The two storage backends of the decision log, for the tests: SQLite and PostgreSQL.

PostgreSQL runs at 127.0.0.1:5432 with trust authentication, database ``test``, user
``postgres`` (``.ci/run`` starts it). Each test gets a fresh schema, dropped afterwards.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from fairalloc.records import DecisionLog

PG = "postgresql://postgres@127.0.0.1:5432/test"


def pg_schema() -> Iterator[str]:
    """A fresh schema in the test database, dropped afterwards."""
    import psycopg

    name = f"fa_{uuid.uuid4().hex[:12]}"
    try:
        conn = psycopg.connect(PG, autocommit=True, connect_timeout=10)
    except psycopg.OperationalError as exc:
        pytest.fail(
            f"the decision log's tests need PostgreSQL at {PG} (trust authentication): {exc}"
        )
    with conn:
        conn.execute(f"CREATE SCHEMA {name}")
    try:
        yield name
    finally:
        with psycopg.connect(PG, autocommit=True) as c:
            c.execute(f"DROP SCHEMA {name} CASCADE")


def pg_url(schema: str, user: str = "postgres") -> str:
    """The URL of the test database with ``schema`` as the search path."""
    return f"postgresql://{user}@127.0.0.1:5432/test?options=-csearch_path%3D{schema}"


@pytest.fixture(params=["sqlite", "postgres"])
def log_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty log: a SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'log.db'}"
    else:
        yield from (pg_url(s) for s in pg_schema())


@pytest.fixture
def log(log_url: str) -> Iterator[DecisionLog]:
    """The log at :func:`log_url`, open."""
    with DecisionLog.open(log_url) as opened:
        yield opened
