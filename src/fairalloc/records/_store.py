"""Where a decision log lives: one small interface, SQLite by default, PostgreSQL when shared.

Three tables:

* ``fa_records``: the chain, one row per record (its sequence number, kind, hash and canonical
  bytes). Append only: SQLite refuses updates and deletes by trigger; on PostgreSQL the role
  that appends needs only ``INSERT`` and ``SELECT``.
* ``fa_leaves``: the leaf commitments of a record (32 bytes each, in leaf order). They hide
  residents' data and are published with the log. Append only as well.
* ``fa_openings``: the operator's private openings of those commitments (the residents' ids
  and one random nonce each). Never exported with the log; erasing a resident overwrites their
  opening, which is why this table is the only one rows can change in.

Appending takes a lock first (``BEGIN IMMEDIATE`` in SQLite, a transaction-scoped advisory
lock in PostgreSQL), reads the last record and writes the next one in the same transaction, so
two processes appending at the same time never fork the chain.
"""

from __future__ import annotations

import sqlite3
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from fairalloc._optional import require
from fairalloc.errors import RecordsError

__all__ = ["Opening", "PostgresStore", "SQLiteStore", "Store", "StoredRecord", "open_store"]

GENESIS = "0" * 64


@dataclass(frozen=True, slots=True)
class StoredRecord:
    """One record as stored: sequence number, kind, hash (hex) and canonical bytes."""

    seq: int
    kind: str
    hash: str
    body: bytes


@dataclass(frozen=True, slots=True)
class Opening:
    """The private openings of a record's leaves: residents' ids and nonces, in leaf order.

    An erased resident's id is ``""`` and their nonce 32 zero bytes. ``fingerprint`` is the
    hash of the data as committed (:func:`~fairalloc.records._commit.fingerprint`), so the
    same data need not be committed again row by row; empty after an erasure.
    """

    ids: list[str]
    nonces: bytes
    fingerprint: str = ""


#: Builds a record's canonical bytes from its sequence number and the previous record's hash.
Builder = Callable[[int, str], tuple[bytes, str]]


class Store(Protocol):
    """What a decision log needs from its storage."""

    url: str

    def append(
        self, kind: str, build: Builder, leaves: bytes | None, opening: Opening | None
    ) -> StoredRecord:
        """Append the record ``build(seq, prev_hash)`` returns, atomically with its leaves."""
        ...

    def records(self, start: int = 0) -> list[StoredRecord]:
        """Every record from ``start`` on, in order."""
        ...

    def leaves(self, seq: int) -> bytes | None:
        """The leaf commitments of record ``seq``, if it has any."""
        ...

    def opening(self, seq: int) -> Opening | None:
        """The private openings of record ``seq``'s leaves, if kept."""
        ...

    def openings(self) -> Iterator[tuple[int, Opening]]:
        """Every record's private openings."""
        ...

    def replace_opening(self, seq: int, opening: Opening) -> None:
        """Overwrite the openings of record ``seq`` (erasure)."""
        ...

    def close(self) -> None:
        """Release the connection."""
        ...


def _ids_text(ids: list[str]) -> str:
    return "\n".join(ids)


def _ids_list(text: str, n: int) -> list[str]:
    return text.split("\n") if n else []


def _opening(row: Any) -> Opening:
    n, ids, nonces, fingerprint = row
    return Opening(_ids_list(str(ids), int(n)), bytes(nonces), str(fingerprint))


class SQLiteStore:
    """A log in one SQLite file (standard library only).

    Args:
        path: The database file (created if missing).
    """

    def __init__(self, path: str | Path) -> None:
        self.url = f"sqlite:///{path}"
        self.path = str(path)
        # isolation_level=None: transactions are begun explicitly (BEGIN IMMEDIATE).
        self.conn = sqlite3.connect(self.path, timeout=60.0, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        try:
            self.conn.executescript("BEGIN IMMEDIATE;" + _SQLITE_SCHEMA + "COMMIT;")
        except BaseException:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise

    def append(
        self, kind: str, build: Builder, leaves: bytes | None, opening: Opening | None
    ) -> StoredRecord:
        """See :meth:`Store.append`."""
        c = self.conn
        c.execute("BEGIN IMMEDIATE")
        try:
            last = c.execute(
                "SELECT seq, hash FROM fa_records ORDER BY seq DESC LIMIT 1"
            ).fetchone()
            seq = 0 if last is None else int(last[0]) + 1
            body, digest = build(seq, GENESIS if last is None else str(last[1]))
            c.execute(
                "INSERT INTO fa_records (seq, kind, hash, body) VALUES (?, ?, ?, ?)",
                (seq, kind, digest, body),
            )
            if leaves is not None:
                c.execute("INSERT INTO fa_leaves (seq, leaves) VALUES (?, ?)", (seq, leaves))
            if opening is not None:
                c.execute(
                    "INSERT INTO fa_openings (seq, n, ids, nonces, fingerprint)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (
                        seq,
                        len(opening.ids),
                        _ids_text(opening.ids),
                        opening.nonces,
                        opening.fingerprint,
                    ),
                )
        except BaseException:
            c.execute("ROLLBACK")
            raise
        c.execute("COMMIT")
        return StoredRecord(seq, kind, digest, body)

    def records(self, start: int = 0) -> list[StoredRecord]:
        """See :meth:`Store.records`."""
        rows = self.conn.execute(
            "SELECT seq, kind, hash, body FROM fa_records WHERE seq >= ? ORDER BY seq", (start,)
        ).fetchall()
        return [StoredRecord(int(s), str(k), str(h), bytes(b)) for s, k, h, b in rows]

    def leaves(self, seq: int) -> bytes | None:
        """See :meth:`Store.leaves`."""
        row = self.conn.execute("SELECT leaves FROM fa_leaves WHERE seq = ?", (seq,)).fetchone()
        return None if row is None else bytes(row[0])

    def opening(self, seq: int) -> Opening | None:
        """See :meth:`Store.opening`."""
        row = self.conn.execute(
            "SELECT n, ids, nonces, fingerprint FROM fa_openings WHERE seq = ?", (seq,)
        ).fetchone()
        return None if row is None else _opening(row)

    def openings(self) -> Iterator[tuple[int, Opening]]:
        """See :meth:`Store.openings`."""
        rows = self.conn.execute(
            "SELECT seq, n, ids, nonces, fingerprint FROM fa_openings ORDER BY seq"
        )
        for row in rows.fetchall():
            yield int(row[0]), _opening(row[1:])

    def replace_opening(self, seq: int, opening: Opening) -> None:
        """See :meth:`Store.replace_opening`."""
        c = self.conn
        c.execute("BEGIN IMMEDIATE")
        try:
            c.execute(
                "UPDATE fa_openings SET ids = ?, nonces = ?, fingerprint = ? WHERE seq = ?",
                (_ids_text(opening.ids), opening.nonces, opening.fingerprint, seq),
            )
        except BaseException:
            c.execute("ROLLBACK")
            raise
        c.execute("COMMIT")

    def close(self) -> None:
        """See :meth:`Store.close`."""
        self.conn.close()


_SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS fa_records (
    seq INTEGER PRIMARY KEY, kind TEXT NOT NULL, hash TEXT NOT NULL UNIQUE, body BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS fa_leaves (
    seq INTEGER PRIMARY KEY REFERENCES fa_records (seq), leaves BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS fa_openings (
    seq INTEGER PRIMARY KEY, n INTEGER NOT NULL, ids TEXT NOT NULL, nonces BLOB NOT NULL,
    fingerprint TEXT NOT NULL DEFAULT '');
CREATE TRIGGER IF NOT EXISTS fa_records_no_update BEFORE UPDATE ON fa_records
    BEGIN SELECT RAISE(ABORT, 'the decision log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS fa_records_no_delete BEFORE DELETE ON fa_records
    BEGIN SELECT RAISE(ABORT, 'the decision log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS fa_leaves_no_update BEFORE UPDATE ON fa_leaves
    BEGIN SELECT RAISE(ABORT, 'the decision log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS fa_leaves_no_delete BEFORE DELETE ON fa_leaves
    BEGIN SELECT RAISE(ABORT, 'the decision log is append-only'); END;
"""

_PG_TABLES = (
    "CREATE TABLE fa_records (seq BIGINT PRIMARY KEY, kind TEXT NOT NULL,"
    " hash TEXT NOT NULL UNIQUE, body BYTEA NOT NULL)",
    "CREATE TABLE fa_leaves (seq BIGINT PRIMARY KEY REFERENCES fa_records (seq),"
    " leaves BYTEA NOT NULL)",
    "CREATE TABLE fa_openings (seq BIGINT PRIMARY KEY, n BIGINT NOT NULL, ids TEXT NOT NULL,"
    " nonces BYTEA NOT NULL, fingerprint TEXT NOT NULL DEFAULT '')",
)


class PostgresStore:
    """A log in a PostgreSQL database, shared by several offices (needs the ``postgres`` extra).

    Args:
        url: A libpq connection URL, e.g. ``postgresql://clerk@db.example/office``; the tables
            live in the connection's current schema (``?options=-csearch_path%3Dname`` picks
            one). They are created when missing, which needs the ``CREATE`` privilege once.
    """

    def __init__(self, url: str) -> None:
        psycopg: Any = require("psycopg", extra="postgres", feature="a PostgreSQL decision log")
        self.url = url
        try:
            self.conn: Any = psycopg.connect(url, autocommit=True)
        except psycopg.Error as exc:
            raise RecordsError("FA701", f"cannot open the log at {_safe(url)}: {exc}") from exc
        try:
            with self.conn.transaction():
                self._lock()
                for name, ddl in zip(
                    ("fa_records", "fa_leaves", "fa_openings"), _PG_TABLES, strict=True
                ):
                    found = self.conn.execute("SELECT to_regclass(%s)", (name,)).fetchone()
                    if found is None or found[0] is None:
                        self.conn.execute(ddl)
        except psycopg.Error as exc:
            self.conn.close()
            raise RecordsError(
                "FA701", f"cannot open the log's tables at {_safe(url)}: {exc}"
            ) from exc

    def _lock(self) -> None:
        # One lock per schema: appends to other logs in the same database never wait.
        self.conn.execute(
            "SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.fa_records'))"
        )

    def append(
        self, kind: str, build: Builder, leaves: bytes | None, opening: Opening | None
    ) -> StoredRecord:
        """See :meth:`Store.append`."""
        c = self.conn
        with c.transaction():
            self._lock()
            last = c.execute(
                "SELECT seq, hash FROM fa_records ORDER BY seq DESC LIMIT 1"
            ).fetchone()
            seq = 0 if last is None else int(last[0]) + 1
            body, digest = build(seq, GENESIS if last is None else str(last[1]))
            c.execute(
                "INSERT INTO fa_records (seq, kind, hash, body) VALUES (%s, %s, %s, %s)",
                (seq, kind, digest, body),
            )
            if leaves is not None:
                c.execute("INSERT INTO fa_leaves (seq, leaves) VALUES (%s, %s)", (seq, leaves))
            if opening is not None:
                c.execute(
                    "INSERT INTO fa_openings (seq, n, ids, nonces, fingerprint)"
                    " VALUES (%s, %s, %s, %s, %s)",
                    (
                        seq,
                        len(opening.ids),
                        _ids_text(opening.ids),
                        opening.nonces,
                        opening.fingerprint,
                    ),
                )
        return StoredRecord(seq, kind, digest, body)

    def records(self, start: int = 0) -> list[StoredRecord]:
        """See :meth:`Store.records`."""
        rows = self.conn.execute(
            "SELECT seq, kind, hash, body FROM fa_records WHERE seq >= %s ORDER BY seq", (start,)
        ).fetchall()
        return [StoredRecord(int(s), str(k), str(h), bytes(b)) for s, k, h, b in rows]

    def leaves(self, seq: int) -> bytes | None:
        """See :meth:`Store.leaves`."""
        row = self.conn.execute("SELECT leaves FROM fa_leaves WHERE seq = %s", (seq,)).fetchone()
        return None if row is None else bytes(row[0])

    def opening(self, seq: int) -> Opening | None:
        """See :meth:`Store.opening`."""
        row = self.conn.execute(
            "SELECT n, ids, nonces, fingerprint FROM fa_openings WHERE seq = %s", (seq,)
        ).fetchone()
        return None if row is None else _opening(row)

    def openings(self) -> Iterator[tuple[int, Opening]]:
        """See :meth:`Store.openings`."""
        rows = self.conn.execute(
            "SELECT seq, n, ids, nonces, fingerprint FROM fa_openings ORDER BY seq"
        )
        for row in rows.fetchall():
            yield int(row[0]), _opening(row[1:])

    def replace_opening(self, seq: int, opening: Opening) -> None:
        """See :meth:`Store.replace_opening`."""
        with self.conn.transaction():
            self.conn.execute(
                "UPDATE fa_openings SET ids = %s, nonces = %s, fingerprint = %s WHERE seq = %s",
                (_ids_text(opening.ids), opening.nonces, opening.fingerprint, seq),
            )

    def close(self) -> None:
        """See :meth:`Store.close`."""
        self.conn.close()


def _safe(url: str) -> str:
    """``url`` without a password."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def open_store(url: str | Path) -> Store:
    """Open the store at ``url``: ``postgresql://...`` or ``sqlite:///path`` or a file path.

    Raises:
        RecordsError: ``FA701`` if the store cannot be opened.
    """
    text = str(url)
    if text.startswith(("postgresql://", "postgres://")):
        return PostgresStore(text)
    path = text.removeprefix("sqlite:///") if text.startswith("sqlite:///") else text
    if "://" in path:
        raise RecordsError(
            "FA701",
            f"unknown log address {text!r}",
            valid="a file path, sqlite:///path or postgresql://user@host/database",
        )
    try:
        return SQLiteStore(path)
    except sqlite3.Error as exc:
        raise RecordsError("FA701", f"cannot open the log at {path}: {exc}") from exc
