"""
The spool's SQLite file: its schema, how it is opened and checked, its SQL.

One table, ``messages (id, data, size)``, in WAL mode with ``synchronous=NORMAL``; the file
is marked with an application id and a schema version. These functions raise what SQLite
and the operating system raise (:class:`sqlite3.Error`, :class:`OSError`);
:class:`~.spool.Spool` turns that into :class:`~otel_segment.errors.SpoolError`.
Standard library only.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Collection, Iterator, Sequence

__all__ = [
    "connect",
    "delete_rows",
    "evict_oldest",
    "insert_rows",
    "is_corrupt",
    "move_aside",
    "select_after",
    "shrink",
    "totals",
    "transaction",
]

_APPLICATION_ID: Final = 0x6F53_706C  # "oSpl": marks a database as an otel_segment spool
_SCHEMA_VERSION: Final = 1
_IDS_PER_STATEMENT: Final = 500  # stays below SQLite's oldest bound on "?" parameters
_WAL_SIZE_LIMIT_BYTES: Final = 4 * 1024 * 1024
_BUSY_TIMEOUT_SECONDS: Final = 1.0
_CREATE_TABLE: Final = (
    "CREATE TABLE IF NOT EXISTS messages "
    "(id INTEGER PRIMARY KEY, data BLOB NOT NULL, size INTEGER NOT NULL)"
)


class _CorruptError(sqlite3.DatabaseError):
    """SQLite opened the file, but its integrity check failed."""


class _UnusableError(sqlite3.Error):
    """A sound database that this version cannot use as a spool (foreign, newer, no WAL)."""


# -- opening -------------------------------------------------------------------------


def connect(path: str) -> sqlite3.Connection:
    """Create the file (0600) if absent (or raise ``OSError``), open it in WAL mode, check it."""
    os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600))
    db = sqlite3.connect(
        path, timeout=_BUSY_TIMEOUT_SECONDS, isolation_level=None, check_same_thread=False
    )
    try:
        _check_schema(db)
    except BaseException:
        db.close()
        raise
    return db


def _check_schema(db: sqlite3.Connection) -> None:
    """Switch to WAL; create the table in a new file; refuse a corrupt, foreign or newer one."""
    (mode,) = db.execute("PRAGMA journal_mode=WAL").fetchone()
    if str(mode).lower() != "wal":
        raise _UnusableError(f"WAL mode is not available here (journal_mode={mode})")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute(f"PRAGMA journal_size_limit={_WAL_SIZE_LIMIT_BYTES}")
    (check,) = db.execute("PRAGMA quick_check(1)").fetchone()
    if check != "ok":
        raise _CorruptError(f"integrity check failed: {check}")
    (application_id,) = db.execute("PRAGMA application_id").fetchone()
    tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if application_id == 0 and not tables:
        db.execute(f"PRAGMA application_id={_APPLICATION_ID}")
        db.execute(f"PRAGMA user_version={_SCHEMA_VERSION}")
    elif application_id != _APPLICATION_ID:
        raise _UnusableError("the file is an SQLite database of another application")
    (version,) = db.execute("PRAGMA user_version").fetchone()
    if version > _SCHEMA_VERSION:
        raise _UnusableError(f"written by a newer otel_segment (schema {version})")
    db.execute(_CREATE_TABLE)


def is_corrupt(error: sqlite3.Error) -> bool:
    """Whether *error* says the file is damaged or not a database at all."""
    code = getattr(error, "sqlite_errorcode", 0) & 0xFF
    return isinstance(error, _CorruptError) or code in {
        sqlite3.SQLITE_CORRUPT,
        sqlite3.SQLITE_NOTADB,
    }


def move_aside(path: str) -> str:
    """Rename *path* and its WAL files to ``<path>.corrupt-<UTC time>``; the new name."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    aside = f"{path}.corrupt-{stamp}"
    for suffix in ("", "-wal", "-shm"):
        source = Path(path + suffix)
        if source.exists():
            source.replace(aside + suffix)
    return aside


def totals(db: sqlite3.Connection) -> tuple[int, int, int]:
    """The number of rows, their total size, and the highest id (0 when empty)."""
    count, size, last = db.execute(
        "SELECT COUNT(*), COALESCE(SUM(size), 0), COALESCE(MAX(id), 0) FROM messages"
    ).fetchone()
    return int(count), int(size), int(last)


def shrink(db: sqlite3.Connection) -> None:
    """Give free pages back to the file system (an emptied backlog keeps no disk space)."""
    if db.execute("PRAGMA freelist_count").fetchone()[0]:
        db.execute("VACUUM")


# -- rows ----------------------------------------------------------------------------


@contextlib.contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[None]:
    """Run the block in one write transaction; roll it back if anything fails."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
        db.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            db.execute("ROLLBACK")
        raise


def insert_rows(db: sqlite3.Connection, ids: Sequence[int], items: Sequence[bytes]) -> None:
    """Store *items* under the row ids *ids*."""
    db.executemany(
        "INSERT INTO messages (id, data, size) VALUES (?, ?, ?)",
        zip(ids, items, map(len, items), strict=True),
    )


def delete_rows(db: sqlite3.Connection, ids: Collection[int]) -> tuple[int, int]:
    """Delete rows by id (unknown ids are ignored); their total size and number."""
    listed = list(ids)
    freed = removed = 0
    for start in range(0, len(listed), _IDS_PER_STATEMENT):
        chunk = listed[start : start + _IDS_PER_STATEMENT]
        marks = ",".join("?" * len(chunk))  # only "?" placeholders go into the SQL
        size, count = db.execute(
            f"SELECT COALESCE(SUM(size), 0), COUNT(*) FROM messages WHERE id IN ({marks})",  # noqa: S608
            chunk,
        ).fetchone()
        db.execute(f"DELETE FROM messages WHERE id IN ({marks})", chunk)  # noqa: S608
        freed, removed = freed + size, removed + count
    return freed, removed


def evict_oldest(db: sqlite3.Connection, need: int, protect: Collection[int]) -> list[bytes]:
    """Delete the oldest rows not in *protect* until *need* bytes are free; their data."""
    victims: list[int] = []
    evicted: list[bytes] = []
    freed = 0
    with contextlib.closing(db.execute("SELECT id, data FROM messages ORDER BY id")) as rows:
        for rowid, data in rows:
            if rowid in protect:
                continue
            victims.append(rowid)
            evicted.append(bytes(data))
            freed += len(data)
            if freed >= need:
                break
    delete_rows(db, victims)
    return evicted


def select_after(db: sqlite3.Connection, after: int, limit: int) -> list[tuple[int, bytes]]:
    """Up to *limit* rows with an id above *after*, oldest first: ``(id, data)`` pairs."""
    rows = db.execute(
        "SELECT id, data FROM messages WHERE id > ? ORDER BY id LIMIT ?", (after, limit)
    )
    return [(rowid, bytes(data)) for rowid, data in rows]
