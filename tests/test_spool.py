"""Tests for otel_segment.pipeline.spool: the SQLite file, its bound, its lock, corrupt files."""

from __future__ import annotations

import os
import re
import sqlite3
from typing import TYPE_CHECKING

import pytest

from otel_segment import SpoolError, SpoolLockedError
from otel_segment.pipeline.spool import Spool

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


@pytest.fixture
def path(tmp_path: Path) -> Path:
    """Where the test's spool file goes."""
    return tmp_path / "spool.db"


@pytest.fixture
def spool(path: Path) -> Iterator[Spool]:
    """An open spool of 100 bytes, closed afterwards."""
    with Spool(path, max_bytes=100) as opened:
        yield opened


def mode(path: Path) -> int:
    """The permission bits of *path*."""
    return path.stat().st_mode & 0o777


class TestFile:
    """One SQLite file in WAL mode, owner-only, that keeps the bytes exactly."""

    def test_owner_only_permissions(self, spool: Spool, path: Path) -> None:
        """The file, its WAL files and its lock file are created 0600."""
        spool.write([b"x" * 10])
        siblings = [path, path.with_name("spool.db-wal"), path.with_name("spool.db-shm")]

        assert [0o600] * 4 == [mode(p) for p in [*siblings, path.with_name("spool.db.lock")]]

    def test_wal_mode(self, spool: Spool, path: Path) -> None:
        """The database is in WAL mode, marked as a spool."""
        del spool
        with sqlite3.connect(path) as db:
            assert ("wal",) == db.execute("PRAGMA journal_mode").fetchone()
        db.close()

    def test_bytes_and_order_survive_a_reopen(self, path: Path) -> None:
        """What is written is read back as the same bytes, oldest first, after a reopen."""
        items = [b'{"messageId":"a"}', b'{"messageId":"b"}', bytes(range(256))]
        with Spool(path) as first:
            written = first.write(items)
        with Spool(path) as second:
            rows = second.load()

        assert [1, 2, 3] == written.ids
        assert list(zip([1, 2, 3], items, strict=True)) == rows
        assert (3, sum(map(len, items)), 3) == (second.count, second.total_bytes, second.last_id)

    def test_ids_grow_past_deleted_rows(self, spool: Spool) -> None:
        """Deleting the newest row never makes its id come back while open."""
        spool.write([b"a", b"b"])
        spool.delete([2])

        assert [3] == spool.write([b"c"]).ids

    def test_load_pages_after_an_id(self, spool: Spool) -> None:
        """load(after=, limit=) reads one page of rows at a time."""
        spool.write([b"a", b"b", b"c", b"d"])

        assert [(2, b"b"), (3, b"c")] == spool.load(after=1, limit=2)
        assert [] == spool.load(after=4)

    def test_delete_updates_totals(self, spool: Spool) -> None:
        """Deleted rows leave the count and the byte total; unknown ids are ignored."""
        spool.write([b"aa", b"bbb", b"c"])
        spool.delete([1, 3, 99])

        assert (1, 3, [(2, b"bbb")]) == (spool.count, spool.total_bytes, spool.load())

    def test_many_deletes_in_one_write(self, spool: Spool, path: Path) -> None:
        """More ids than one statement takes are deleted in chunks."""
        with Spool(path.with_name("big.db")) as big:
            big.write([b"x"] * 1200)
            big.write([b"y"], delete=range(1, 1201))
            assert [(1201, b"y")] == big.load()
        assert 0 == spool.count

    def test_an_emptied_spool_shrinks_at_close(self, path: Path) -> None:
        """A backlog's disk space is given back once every row is gone."""
        with Spool(path) as spool:
            spool.write([os.urandom(1000) for _ in range(2000)])
            spool.delete(range(1, 2001))
            spool.write([b"last"], delete=())
            spool.delete([2001])

        assert path.stat().st_size < 64 * 1024
        with Spool(path) as again:
            assert (0, 0) == (again.count, again.total_bytes)

    def test_closed_spool_refuses_work(self, path: Path) -> None:
        """After close(), a write raises SpoolError naming the path; close() twice is fine."""
        spool = Spool(path)
        spool.close()
        spool.close()

        with pytest.raises(SpoolError, match="closed"):
            spool.write([b"x"])
        assert spool.closed


class TestBound:
    """A write that would pass max_bytes drops the oldest rows first, and says which."""

    def test_evicts_the_oldest(self, spool: Spool) -> None:
        """Room is made by deleting the oldest rows, returned oldest first."""
        spool.write([b"a" * 40, b"b" * 40])
        written = spool.write([b"c" * 40])

        assert ([b"a" * 40], [], 1) == (written.evicted, written.refused, written.dropped)
        assert [b"b" * 40, b"c" * 40] == [data for _, data in spool.load()]
        assert 80 == spool.total_bytes

    def test_protected_rows_are_skipped(self, spool: Spool) -> None:
        """Rows the caller protects (being sent) are not evicted; the next oldest are."""
        spool.write([b"a" * 30, b"b" * 30, b"c" * 30])
        written = spool.write([b"d" * 30], protect={1})

        assert [b"b" * 30] == written.evicted
        assert [1, 3, 4] == [rowid for rowid, _ in spool.load()]

    def test_refuses_the_oldest_incoming_when_nothing_can_go(self, spool: Spool) -> None:
        """With every stored row protected, the oldest incoming items are not stored."""
        spool.write([b"a" * 60])
        written = spool.write([b"b" * 30, b"c" * 30], protect={1})

        assert ([], [b"b" * 30]) == (written.evicted, written.refused)
        assert [2] == written.ids
        assert 90 == spool.total_bytes


class TestLock:
    """One owner per spool file: a second opener is refused, naming the path."""

    def test_second_opener_refused(self, spool: Spool, path: Path) -> None:
        """Even in the same process, a second Spool on the file raises SpoolLockedError."""
        del spool
        with pytest.raises(SpoolLockedError, match=re.escape(str(path))) as raised:
            Spool(path)
        assert isinstance(raised.value, ValueError)
        assert str(path) == raised.value.path

    def test_free_again_after_close(self, path: Path) -> None:
        """Closing releases the lock."""
        Spool(path).close()
        with Spool(path) as again:
            assert 0 == again.count

    def test_abandon_keeps_the_files_untouched(self, path: Path) -> None:
        """abandon() (a forked child's way out) leaves the rows and frees this descriptor."""
        spool = Spool(path)
        spool.write([b"kept"])
        spool.abandon()

        assert spool.closed
        with Spool(path) as again:  # the only descriptor of the lock is closed
            assert [(1, b"kept")] == again.load()


class TestBadFiles:
    """Unusable files fail at construction with a clear error naming the path."""

    def test_garbage_file(self, path: Path) -> None:
        """A file that is not a database is refused, with a hint; it is left in place."""
        path.write_bytes(b"garbage" * 1000)

        with pytest.raises(SpoolError, match=f"{re.escape(str(path))}.*not a database"):
            Spool(path)
        assert path.read_bytes() == b"garbage" * 1000

    def test_damaged_pages(self, path: Path) -> None:
        """A real spool with a damaged page is refused as corrupt."""
        with Spool(path) as spool:
            spool.write([os.urandom(500) for _ in range(50)])
        with sqlite3.connect(path) as db:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.close()
        data = bytearray(path.read_bytes())
        data[4096 + 8 : 4096 + 200] = b"\xff" * 192  # the second page's b-tree header
        path.write_bytes(bytes(data))

        with pytest.raises(SpoolError, match=re.escape(str(path))):
            Spool(path)

    def test_recover_moves_the_file_aside(self, path: Path) -> None:
        """recover=True renames the corrupt file and starts an empty spool."""
        path.write_bytes(b"garbage" * 1000)

        with Spool(path, recover=True) as spool:
            assert 0 == spool.count
        aside = [p for p in path.parent.iterdir() if ".corrupt-" in p.name]
        assert 1 == len(aside)
        assert b"garbage" * 1000 == aside[0].read_bytes()

    def test_foreign_database_is_never_moved(self, path: Path) -> None:
        """Another application's database is refused even with recover=True."""
        with sqlite3.connect(path) as db:
            db.execute("CREATE TABLE accounts (id INTEGER)")
        db.close()

        with pytest.raises(SpoolError, match="another application"):
            Spool(path, recover=True)
        assert path.exists()

    def test_missing_directory(self, tmp_path: Path) -> None:
        """A path in a directory that does not exist is refused, naming it."""
        missing = tmp_path / "no" / "spool.db"
        with pytest.raises(SpoolError, match=re.escape(str(missing))):
            Spool(missing)

    @pytest.mark.parametrize(
        ("path_value", "max_bytes", "error"),
        [(5, 100, TypeError), (b"x.db", 100, TypeError), ("x.db", 0, ValueError)],
    )
    def test_bad_arguments(
        self, path_value: object, max_bytes: int, error: type[Exception]
    ) -> None:
        """Wrong types and ranges raise before any file is touched."""
        with pytest.raises(error):
            Spool(path_value, max_bytes=max_bytes)  # type: ignore[arg-type]
