"""
An on-disk spool of encoded messages: one SQLite file in WAL mode, owned by one process.

Rows hold the message bytes exactly as queued, so a message read back after a restart
carries the same ``messageId``. The spool is bounded: a write that would take the stored
bytes past ``max_bytes`` first deletes the oldest rows (except those the caller protects)
and hands them back, so the caller can count and report them. Standard library only.

Ownership: :class:`Spool` takes an exclusive, non-blocking ``flock`` on a sibling file
``<path>.lock`` before it touches the database, so a second opener (another process, or
another client in this one) is refused with :class:`SpoolLockedError` instead of two
pipelines sending the same rows. A forked child must not use its parent's connection:
:meth:`Spool.abandon` drops it there without closing it.

Durability: ``journal_mode=WAL`` with ``synchronous=NORMAL``. A committed write survives
the process being killed (``kill -9``, OOM); after an operating-system crash or power loss
the last commits before it may be missing (WAL is then synced at checkpoints only), which
keeps a commit free of ``fsync``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import logging
import os
import sqlite3
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Final, Self

if TYPE_CHECKING:
    from collections.abc import Collection, Sequence

__all__ = ["DEFAULT_SPOOL_MAX_BYTES", "Spool", "SpoolError", "SpoolLockedError", "Written"]

_logger = logging.getLogger("otel_segment")

DEFAULT_SPOOL_MAX_BYTES: Final = 64 * 1024 * 1024
"""Message bytes a spool holds by default (64 MiB, about 100,000 typical messages)."""

_APPLICATION_ID: Final = 0x6F53_706C  # "oSpl": marks a database as an otel_segment spool
_SCHEMA_VERSION: Final = 1
_IDS_PER_STATEMENT: Final = 500  # stays below SQLite's oldest bound on "?" parameters
_WAL_SIZE_LIMIT_BYTES: Final = 4 * 1024 * 1024
_BUSY_TIMEOUT_SECONDS: Final = 1.0
_CREATE_TABLE: Final = (
    "CREATE TABLE IF NOT EXISTS messages "
    "(id INTEGER PRIMARY KEY, data BLOB NOT NULL, size INTEGER NOT NULL)"
)

# Connections a forked child inherited: kept referenced, never closed, because closing a
# parent's SQLite connection in a child can disturb the parent's locks and WAL.
_INHERITED: Final[list[sqlite3.Connection]] = []


class SpoolError(ValueError):
    """
    The spool file cannot be used: unreadable, corrupt, foreign or failing.

    A ``ValueError``, like every other bad ``Client`` argument; the message names the path.

    Attributes:
        path: The spool file.
    """

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"spool {path}: {reason}")
        self.path = path


class SpoolLockedError(SpoolError):
    """Another process (or another client of this one) holds the spool: one owner per file."""


@dataclasses.dataclass(frozen=True, slots=True)
class Written:
    """
    What one :meth:`Spool.write` stored and dropped.

    Attributes:
        ids: Row ids of the stored items, in order: the items after the *refused* ones.
        evicted: Older messages deleted to make room, oldest first.
        refused: Incoming messages that did not fit even so (the oldest of them).
    """

    ids: list[int]
    evicted: list[bytes]
    refused: list[bytes]

    @property
    def dropped(self) -> int:
        """Messages this write dropped to stay within the bound."""
        return len(self.evicted) + len(self.refused)


class Spool:
    """
    Encoded messages in one SQLite file, oldest first, within *max_bytes*.

    Not thread-safe: one thread at a time uses it (the pipeline's spool writer).

    Args:
        path: The database file; created with mode 0600 if absent (its directory must
            exist). The lock file ``<path>.lock`` sits beside it.
        max_bytes: Message bytes held at most (the file adds SQLite's page overhead, and
            the WAL file up to a few MiB).
        recover: If the file is corrupt or not a database at all, move it (and its
            ``-wal`` and ``-shm`` files) aside to ``<path>.corrupt-<UTC time>`` and start
            empty, with a warning, instead of raising. A sound database of another
            application is never moved.

    Raises:
        TypeError: *path* or *max_bytes* has the wrong type.
        ValueError: *max_bytes* is below 1.
        SpoolLockedError: Another owner holds the spool.
        SpoolError: The file cannot be created, read or used as a spool.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        max_bytes: int = DEFAULT_SPOOL_MAX_BYTES,
        recover: bool = False,
    ) -> None:
        given: object = path
        if not isinstance(given, str | os.PathLike) or not isinstance(os.fspath(given), str):
            raise TypeError(f"spool must be a path (str or os.PathLike), got {given!r}")
        if isinstance(max_bytes, bool) or not isinstance(max_bytes, int):
            raise TypeError(f"spool_max_bytes must be an int, got {type(max_bytes).__name__}")
        if max_bytes < 1:
            raise ValueError(f"spool_max_bytes must be >= 1, got {max_bytes}")
        self.path: str = os.fspath(path)
        self.max_bytes = max_bytes
        self._db: sqlite3.Connection | None = None
        self._count = self._total = 0
        self._lock_fd: int | None = _lock(self.path)
        try:
            self._db = self._open(recover=recover)
            count, total, last = self._db.execute(
                "SELECT COUNT(*), COALESCE(SUM(size), 0), COALESCE(MAX(id), 0) FROM messages"
            ).fetchone()
        except BaseException:
            self.close()
            raise
        self._count, self._total, self._next_id = int(count), int(total), int(last) + 1

    def __repr__(self) -> str:
        """Show the path and the fill level."""
        return f"Spool({self.path!r}, count={self._count}, bytes={self._total}/{self.max_bytes})"

    def __enter__(self) -> Self:
        """Use the spool in a ``with`` block; it is closed on exit."""
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Close the spool."""
        self.close()

    @property
    def count(self) -> int:
        """Messages stored now."""
        return self._count

    @property
    def total_bytes(self) -> int:
        """Message bytes stored now."""
        return self._total

    @property
    def last_id(self) -> int:
        """The highest row id given out (0 when empty and new); ids only grow while open."""
        return self._next_id - 1

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` or :meth:`abandon` was called."""
        return self._db is None

    # -- reading and writing -----------------------------------------------------

    def write(
        self,
        items: Sequence[bytes],
        *,
        delete: Collection[int] = (),
        protect: Collection[int] = (),
    ) -> Written:
        """
        In one transaction: delete rows *delete*, make room, append *items*.

        When the new total would pass ``max_bytes``, the oldest rows not in *protect*
        are deleted; if that is not enough, the oldest of *items* are not stored.

        Raises:
            SpoolError: The database failed (disk full, I/O error); nothing was changed.
        """
        db = self._connection()
        incoming = sum(map(len, items))
        try:
            db.execute("BEGIN IMMEDIATE")
            freed, removed = self._delete(db, delete) if delete else (0, 0)
            total, count = self._total - freed, self._count - removed
            evicted: list[bytes] = []
            if total + incoming > self.max_bytes:
                evicted = self._evict(db, total + incoming - self.max_bytes, protect)
                total, count = total - sum(map(len, evicted)), count - len(evicted)
            skip = 0
            while skip < len(items) and total + incoming > self.max_bytes:
                incoming -= len(items[skip])
                skip += 1
            kept = items[skip:]
            ids = list(range(self._next_id, self._next_id + len(kept)))
            db.executemany(
                "INSERT INTO messages (id, data, size) VALUES (?, ?, ?)",
                zip(ids, kept, map(len, kept), strict=True),
            )
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
            raise SpoolError(self.path, f"write failed: {exc}") from exc
        self._total, self._count = total + incoming, count + len(kept)
        self._next_id += len(kept)
        return Written(ids, evicted, list(items[:skip]))

    def delete(self, ids: Collection[int]) -> None:
        """
        Delete the rows *ids* (unknown ids are ignored).

        Raises:
            SpoolError: The database failed.
        """
        self.write((), delete=ids)

    def load(self, *, after: int = 0, limit: int = 1000) -> list[tuple[int, bytes]]:
        """
        Up to *limit* rows with an id above *after*, oldest first: ``(id, data)`` pairs.

        Raises:
            SpoolError: The database failed.
        """
        try:
            rows = self._connection().execute(
                "SELECT id, data FROM messages WHERE id > ? ORDER BY id LIMIT ?", (after, limit)
            )
            return [(rowid, bytes(data)) for rowid, data in rows]
        except sqlite3.Error as exc:
            raise SpoolError(self.path, f"read failed: {exc}") from exc

    # -- lifecycle ---------------------------------------------------------------

    def close(self) -> None:
        """Close the database (shrunk if empty) and release the lock; safe to call twice."""
        db, self._db = self._db, None
        if db is not None:
            with contextlib.suppress(sqlite3.Error):  # best effort: the rows are all gone
                if self._count == 0 and db.execute("PRAGMA freelist_count").fetchone()[0]:
                    db.execute("VACUUM")  # an outage's backlog does not keep its disk space
            db.close()
        fd, self._lock_fd = self._lock_fd, None
        if fd is not None:
            os.close(fd)  # closing the last descriptor releases the flock

    def abandon(self) -> None:
        """
        In a forked child: let go of the parent's connection and lock without touching them.

        The connection is kept referenced, never closed; the child's copy of the lock
        descriptor is closed, which leaves the parent's lock in place (a ``flock`` lives
        as long as any descriptor of it), so the lock does not outlive the parent.
        """
        db, self._db = self._db, None
        if db is not None:
            _INHERITED.append(db)
        fd, self._lock_fd = self._lock_fd, None
        if fd is not None:
            os.close(fd)

    # -- internals -----------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            raise SpoolError(self.path, "the spool is closed")
        return self._db

    def _open(self, *, recover: bool) -> sqlite3.Connection:
        """Open (creating if needed) and check the database; move it aside if asked."""
        try:
            return _connect(self.path)
        except sqlite3.Error as exc:
            if not (recover and _is_corrupt(exc)):
                hint = "; move it aside or delete it" if _is_corrupt(exc) else ""
                raise SpoolError(self.path, f"cannot be used as a spool: {exc}{hint}") from exc
            aside = _move_aside(self.path)
            _logger.warning("spool %s was corrupt (%s); moved it to %s", self.path, exc, aside)
        try:
            return _connect(self.path)
        except sqlite3.Error as exc:
            raise SpoolError(self.path, f"cannot create a new spool: {exc}") from exc

    @staticmethod
    def _delete(db: sqlite3.Connection, ids: Collection[int]) -> tuple[int, int]:
        """Delete rows by id; their total size and number."""
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

    def _evict(self, db: sqlite3.Connection, need: int, protect: Collection[int]) -> list[bytes]:
        """Delete the oldest unprotected rows until *need* bytes are free; their data."""
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
        self._delete(db, victims)
        return evicted


class _CorruptError(sqlite3.DatabaseError):
    """SQLite opened the file, but its integrity check failed."""


class _UnusableError(sqlite3.Error):
    """A sound database that this version cannot use as a spool (foreign, newer, no WAL)."""


def _is_corrupt(error: sqlite3.Error) -> bool:
    """Whether *error* says the file is damaged or not a database at all."""
    code = getattr(error, "sqlite_errorcode", 0) & 0xFF
    return isinstance(error, _CorruptError) or code in {
        sqlite3.SQLITE_CORRUPT,
        sqlite3.SQLITE_NOTADB,
    }


def _connect(path: str) -> sqlite3.Connection:
    """Create the file (0600) if absent, open it in WAL mode and check it is a spool."""
    try:
        os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600))
    except OSError as exc:
        raise SpoolError(path, f"cannot open the file: {exc.strerror}") from exc
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


def _move_aside(path: str) -> str:
    """Rename *path* and its WAL files to ``<path>.corrupt-<UTC time>``; the new name."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    aside = f"{path}.corrupt-{stamp}"
    try:
        for suffix in ("", "-wal", "-shm"):
            source = Path(path + suffix)
            if source.exists():
                source.replace(aside + suffix)
    except OSError as exc:
        raise SpoolError(path, f"cannot move the unreadable file aside: {exc.strerror}") from exc
    return aside


if sys.platform == "win32":  # pragma: no cover - the spool needs flock

    def _lock(path: str) -> int:
        raise SpoolError(path, "the spool needs a POSIX system (fcntl.flock)")

else:
    import fcntl

    def _lock(path: str) -> int:
        """Open ``<path>.lock`` (0600) and take an exclusive flock on it, without waiting."""
        lock_path = f"{path}.lock"
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise SpoolError(
                path, f"cannot open its lock file {lock_path}: {exc.strerror}"
            ) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise SpoolLockedError(
                path,
                f"in use by another process or client (lock {lock_path} is held); "
                f"each process needs a spool file of its own",
            ) from None
        except OSError as exc:
            os.close(fd)
            raise SpoolError(path, f"cannot lock {lock_path}: {exc.strerror}") from exc
        return fd
