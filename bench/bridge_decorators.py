"""
What ``@tracked`` adds to a call, excluding the track call itself; a table and ``RESULT``.

Usage: ``python bench/bridge_decorators.py [--iterations N] [--rounds R]``.

Method. The same function is timed undecorated and decorated with
``@tracked(..., client=stub)``, where *stub* is a ``Client(send=False)`` whose ``track``
is replaced by a no-op (an instance attribute, so the decorator's ``client.track(**fields)``
lands on it). The difference is the decorator's own work on every call: wrapt's
``FunctionWrapper``, the clock, binding the arguments, resolving the id and property
paths, building the properties, and calling ``track`` (the no-op's call is included: the
figure errs high, by about 0.1 µs). Target: <= 3 µs per call.

Cross-check (the ``with track`` column): the same, decorated with a real
``Client(send=False)`` (which builds, validates and encodes the message but queues
nothing), minus a direct ``client.track(...)`` with the same fields, timed separately.

Each figure is the best of *R* rounds of *N* calls after a warm-up, timed with
``time.perf_counter``; async calls are awaited in one ``asyncio.run``, generators are
exhausted with ``list()``.
"""

from __future__ import annotations

import asyncio
import gc
import sys
import time
from typing import TYPE_CHECKING, Any, Final, NamedTuple

from _common import WARM_UP, per_call_us, run_and_report

import otel_segment

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine, Iterator

MAX_ADDED_US: Final = 3.0


class User(NamedTuple):
    """The caller."""

    id: str


class Report(NamedTuple):
    """What a call works on."""

    kind: str
    pages: int


USER: Final = User("user-1234")
REPORT: Final = Report("quarterly", 12)


def generate(user: User, report: Report, fmt: str = "pdf") -> int:
    """The sync function measured."""
    return report.pages + len(user.id) + len(fmt)


async def generate_async(user: User, report: Report, fmt: str = "pdf") -> int:
    """The coroutine function measured."""
    return report.pages + len(user.id) + len(fmt)


def generate_rows(user: User, report: Report, fmt: str = "pdf") -> Iterator[int]:
    """The generator function measured (one item)."""
    yield report.pages + len(user.id) + len(fmt)


class Service:
    """Holds the method measured."""

    def __init__(self, owner_id: str) -> None:
        self.owner_id = owner_id

    def run(self, report: Report) -> int:
        """The method measured."""
        return report.pages


def no_track(*args: Any, **kwargs: Any) -> tuple[bool, dict[str, Any]]:
    """Stands in for ``Client.track``: takes the fields, does nothing."""
    del args
    return True, kwargs


def decorate(client: otel_segment.Client) -> dict[str, Callable[..., Any]]:
    """The four kinds, decorated to send through *client*."""
    options: dict[str, Any] = {
        "user_id": "user.id",
        "properties": ["report.kind", "report.pages", "fmt"],
    }

    class Tracked(Service):
        run = client.tracked("Report Run", user_id="self.owner_id", properties=["report.kind"])(
            Service.run
        )

    return {
        "sync function": client.tracked("Report Generated", **options)(generate),
        "method": Tracked("owner-1").run,
        "async function": client.tracked("Report Generated", **options)(generate_async),
        "generator": client.tracked("Report Generated", **options)(generate_rows),
    }


def undecorated() -> dict[str, Callable[..., Any]]:
    """The four kinds as written."""
    return {
        "sync function": generate,
        "method": Service("owner-1").run,
        "async function": generate_async,
        "generator": generate_rows,
    }


def kind_per_call_us(kind: str, func: Callable[..., Any], iterations: int) -> float:
    """µs per call of *func* (of *kind*), after a warm-up."""
    if kind == "method":
        return _loop(lambda: func(REPORT), iterations)
    if kind == "generator":
        return _loop(lambda: list(func(USER, REPORT)), iterations)
    if kind == "async function":
        return asyncio.run(_async_loop(func, iterations))
    return _loop(lambda: func(USER, REPORT), iterations)


def _loop(call: Callable[[], object], iterations: int) -> float:
    return per_call_us(call, iterations)[0]


async def _async_loop(
    func: Callable[[User, Report], Coroutine[Any, Any, int]], iterations: int
) -> float:
    for _ in range(WARM_UP):
        await func(USER, REPORT)
    gc.collect()
    start = time.perf_counter()
    for _ in range(iterations):
        await func(USER, REPORT)
    return (time.perf_counter() - start) / iterations * 1e6


def direct_track_us(client: otel_segment.Client, iterations: int) -> float:
    """µs per direct ``client.track`` with the fields the decorator sends."""
    properties = {"kind": "quarterly", "pages": 12, "fmt": "pdf", "duration_ms": 0.001}
    return _loop(
        lambda: client.track(user_id="user-1234", event="Report Generated", properties=properties),
        iterations,
    )


def run(iterations: int, rounds: int) -> dict[str, Any]:
    """Every kind, *rounds* times; the best figures."""
    stub = otel_segment.Client(send=False)
    stub.track = no_track  # type: ignore[method-assign,assignment]
    real = otel_segment.Client(send=False)
    plain = undecorated()
    columns = (("plain", plain), ("stubbed", decorate(stub)), ("tracked", decorate(real)))
    best: dict[str, dict[str, float]] = {
        kind: {"plain": float("inf"), "stubbed": float("inf"), "tracked": float("inf")}
        for kind in plain
    }
    track_us = float("inf")
    try:
        for _ in range(rounds):
            track_us = min(track_us, direct_track_us(real, iterations))
            for kind, figures in best.items():
                for column, funcs in columns:
                    figures[column] = min(
                        figures[column], kind_per_call_us(kind, funcs[kind], iterations)
                    )
    finally:
        stub.shutdown()
        real.shutdown()
    kinds = {
        kind: {
            **figures,
            "added_us": figures["stubbed"] - figures["plain"],
            "added_us_crosscheck": figures["tracked"] - figures["plain"] - track_us,
        }
        for kind, figures in best.items()
    }
    return {
        "bench": "bridge_decorators",
        "iterations": iterations,
        "rounds": rounds,
        "direct_track_us": track_us,
        "kinds": kinds,
        "target_added_us_max": MAX_ADDED_US,
        "ok": all(k["added_us"] <= MAX_ADDED_US for k in kinds.values()),
    }


def table(result: dict[str, Any]) -> str:
    """The figures as an aligned table."""
    title = (
        f"@tracked overhead, excluding the track call: best of {result['rounds']} rounds "
        f"of {result['iterations']:,} calls (µs per call)"
    )
    header = (
        f"{'':16} {'plain':>7} {'stubbed':>8} {'added':>7} {'with track':>11} "
        f"{'added*':>7}  target <= {MAX_ADDED_US:.1f}"
    )
    lines = [title, header]
    for kind, k in result["kinds"].items():
        verdict = "PASS" if k["added_us"] <= MAX_ADDED_US else "MISS"
        lines.append(
            f"{kind:16} {k['plain']:7.2f} {k['stubbed']:8.2f} {k['added_us']:7.2f} "
            f"{k['tracked']:11.2f} {k['added_us_crosscheck']:7.2f}  {verdict}"
        )
    lines.append(
        f"* with track - plain - direct client.track ({result['direct_track_us']:.2f} µs), "
        "Client(send=False)"
    )
    return "\n".join(lines)


if __name__ == "__main__":
    run_and_report(
        sys.argv[1:], "What @tracked adds to a call.", ("iterations", 50_000), run, table
    )
