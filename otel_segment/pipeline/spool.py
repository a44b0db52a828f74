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
import logging
import os
import sqlite3
import sys
from typing import TYPE_CHECKING, Final, Self

from otel_segment.errors import SpoolError, SpoolLockedError
from otel_segment.pipeline import spool_db as _spool_db

if TYPE_CHECKING:
    from collections.abc import Collection, Sequence

__all__ = ["DEFAULT_SPOOL_MAX_BYTES", "Spool", "Written"]

_logger = logging.getLogger("otel_segment")

DEFAULT_SPOOL_MAX_BYTES: Final = 64 * 1024 * 1024
"""Message bytes a spool holds by default (64 MiB, about 100,000 typical messages)."""

# Connections a forked child inherited: kept referenced, never closed, because closing a
# parent's SQLite connection in a child can disturb the parent's locks and WAL.
_INHERITED: Final[list[sqlite3.Connection]] = []


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
            self._count, self._total, last = _spool_db.totals(self._db)
        except BaseException:
            self.close()
            raise
        self._next_id = last + 1

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
            with _spool_db.transaction(db):
                freed, removed = _spool_db.delete_rows(db, delete) if delete else (0, 0)
                total, count = self._total - freed, self._count - removed
                evicted: list[bytes] = []
                if total + incoming > self.max_bytes:
                    need = total + incoming - self.max_bytes
                    evicted = _spool_db.evict_oldest(db, need, protect)
                    total, count = total - sum(map(len, evicted)), count - len(evicted)
                skip = 0
                while skip < len(items) and total + incoming > self.max_bytes:
                    incoming -= len(items[skip])
                    skip += 1
                kept = items[skip:]
                ids = list(range(self._next_id, self._next_id + len(kept)))
                _spool_db.insert_rows(db, ids, kept)
        except sqlite3.Error as exc:
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
            return _spool_db.select_after(self._connection(), after, limit)
        except sqlite3.Error as exc:
            raise SpoolError(self.path, f"read failed: {exc}") from exc

    # -- lifecycle ---------------------------------------------------------------

    def close(self) -> None:
        """Close the database (shrunk if empty) and release the lock; safe to call twice."""
        db, self._db = self._db, None
        if db is not None:
            if self._count == 0:
                with contextlib.suppress(sqlite3.Error):  # best effort: the rows are all gone
                    _spool_db.shrink(db)
            db.close()
        self._release_lock()  # closing the last descriptor releases the flock

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
        self._release_lock()

    # -- internals -----------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            raise SpoolError(self.path, "the spool is closed")
        return self._db

    def _open(self, *, recover: bool) -> sqlite3.Connection:
        """Open (creating if needed) and check the database; move it aside if asked."""
        try:
            return self._connect()
        except sqlite3.Error as exc:
            if not (recover and _spool_db.is_corrupt(exc)):
                hint = "; move it aside or delete it" if _spool_db.is_corrupt(exc) else ""
                raise SpoolError(self.path, f"cannot be used as a spool: {exc}{hint}") from exc
            try:
                aside = _spool_db.move_aside(self.path)
            except OSError as error:
                reason = f"cannot move the unreadable file aside: {error.strerror}"
                raise SpoolError(self.path, reason) from error
            _logger.warning("spool %s was corrupt (%s); moved it to %s", self.path, exc, aside)
        try:
            return self._connect()
        except sqlite3.Error as exc:
            raise SpoolError(self.path, f"cannot create a new spool: {exc}") from exc

    def _connect(self) -> sqlite3.Connection:
        try:
            return _spool_db.connect(self.path)
        except OSError as exc:
            raise SpoolError(self.path, f"cannot open the file: {exc.strerror}") from exc

    def _release_lock(self) -> None:
        fd, self._lock_fd = self._lock_fd, None
        if fd is not None:
            os.close(fd)


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
