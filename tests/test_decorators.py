"""Tests for ``@tracked`` (kinds, arguments, errors, generators, traces) and ``@snapshot``."""

# ruff: noqa: ARG001, ARG002 - decorated functions take arguments for @tracked's paths to read

from __future__ import annotations

import asyncio
import gc
import inspect
import itertools
import logging
import subprocess
import sys
import traceback
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from _helpers import delivered
from opentelemetry.sdk.trace import TracerProvider

import otel_segment
from otel_segment import Client, snapshot, tracked
from otel_segment.pipeline.guard import inside_pipeline

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, AsyncIterator, Generator, Iterator

    from _server import ScriptedServer
    from opentelemetry.trace import Tracer

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "decorators.py"


@dataclass
class User:
    """A caller with an id."""

    id: str


@dataclass
class Report:
    """What a decorated function works on."""

    kind: str
    pages: int = 3


ADA = User("u1")


@pytest.fixture
def client(segment_server: ScriptedServer) -> Iterator[Client]:
    """A client of the test server, shut down afterwards."""
    with Client("test-key", host=segment_server.url, flush_interval=30) as client:
        yield client


@pytest.fixture
def tracer() -> Iterator[Tracer]:
    """A tracer of a real SDK TracerProvider, shut down afterwards."""
    provider = TracerProvider(shutdown_on_exit=False)
    yield provider.get_tracer("test")
    provider.shutdown()


def props(message: dict[str, Any]) -> dict[str, Any]:
    """The properties of *message* without ``duration_ms`` (checked apart)."""
    properties = dict(message["properties"])
    assert isinstance(properties.pop("duration_ms"), float)
    return properties


class TestFunctionKinds:
    """Every kind of callable sends one event per call, with its result unchanged."""

    def test_sync_function(self, segment_server: ScriptedServer, client: Client) -> None:
        """A plain function: result returned, event with id and properties sent."""

        @client.tracked("Report Generated", user_id="user.id", properties=["report.kind"])
        def generate(user: User, report: Report) -> str:
            return f"{user.id}:{report.kind}"

        assert "u1:pdf" == generate(ADA, Report("pdf"))
        [message] = delivered(client, segment_server)
        assert ("track", "Report Generated", "u1") == (
            message["type"],
            message["event"],
            message["userId"],
        )
        assert {"kind": "pdf"} == props(message)

    def test_coroutine_function(self, segment_server: ScriptedServer, client: Client) -> None:
        """An async function under asyncio.run: the event is sent when it completes."""

        @client.tracked("Fetched", user_id="user.id")
        async def fetch(user: User) -> int:
            await asyncio.sleep(0)
            return 7

        assert 7 == asyncio.run(fetch(ADA))
        [message] = delivered(client, segment_server)
        assert "Fetched" == message["event"]

    def test_generator_function(self, segment_server: ScriptedServer, client: Client) -> None:
        """A generator: items pass through; its return value reaches a properties callable."""

        @client.tracked("Rows", user_id="user.id", properties=lambda _, result: {"total": result})
        def rows(user: User, count: int) -> Generator[int, None, int]:
            yield from range(count)
            return count

        assert [0, 1, 2] == list(rows(ADA, 3))
        [message] = delivered(client, segment_server)
        assert {"total": 3} == props(message)

    def test_async_generator_function(self, segment_server: ScriptedServer, client: Client) -> None:
        """An async generator: items pass through; the event follows the last one."""

        @client.tracked("Streamed", user_id="user.id")
        async def stream(user: User, count: int) -> AsyncIterator[int]:
            for number in range(count):
                await asyncio.sleep(0)
                yield number

        async def consume() -> list[int]:
            return [number async for number in stream(ADA, 3)]

        assert [0, 1, 2] == asyncio.run(consume())
        [message] = delivered(client, segment_server)
        assert "Streamed" == message["event"]

    def test_methods(self, segment_server: ScriptedServer, client: Client) -> None:
        """Instance, class and static methods, decorated above or below the builtin."""

        class Service:
            owner_id = "o1"

            @client.tracked("Instance", user_id="self.owner_id", properties=["x"])
            def instance(self, x: int) -> int:
                return x

            @client.tracked("Class Above", anonymous_id=lambda args: args["cls"].__name__)
            @classmethod
            def class_above(cls, x: int) -> int:
                return x

            @classmethod
            @client.tracked("Class Below", user_id="cls.owner_id", properties=["x"])
            def class_below(cls, x: int) -> int:
                return x

            @client.tracked("Static Above", user_id="x")
            @staticmethod
            def static_above(x: int) -> int:
                return x

            @staticmethod
            @client.tracked("Static Below", user_id="x")
            def static_below(x: int) -> int:
                return x

        service = Service()
        results = [
            service.instance(1),
            Service.instance(service, 2),
            service.class_above(3),
            Service.class_above(4),
            Service.class_below(5),
            service.static_above(6),
            Service.static_below(7),
        ]
        assert [1, 2, 3, 4, 5, 6, 7] == results
        got = [
            (m["event"], m["userId"] or m["anonymousId"], props(m).get("x"))
            for m in delivered(client, segment_server)
        ]
        assert [
            ("Instance", "o1", 1),
            ("Instance", "o1", 2),
            ("Class Above", "Service", None),
            ("Class Above", "Service", None),
            ("Class Below", "o1", 5),
            ("Static Above", "6", None),
            ("Static Below", "7", None),
        ] == got

    def test_introspection_is_kept(self, client: Client) -> None:
        """Signature, __wrapped__, name and the inspect kind answers survive decoration."""

        def plain(user: User, fmt: str = "pdf") -> str:
            return fmt

        async def coroutine(user: User) -> None:
            return None

        def generator(user: User) -> Iterator[int]:
            yield 1

        async def async_generator(user: User) -> AsyncIterator[int]:
            yield 1

        kinds = (
            inspect.iscoroutinefunction,
            inspect.isgeneratorfunction,
            inspect.isasyncgenfunction,
        )
        for func in (plain, coroutine, generator, async_generator):
            decorated: Any = client.tracked("E", user_id="user.id")(func)
            assert func is decorated.__wrapped__
            assert inspect.signature(func) == inspect.signature(decorated)
            assert func.__name__ == decorated.__name__
            assert [kind(func) for kind in kinds] == [kind(decorated) for kind in kinds]

        class Service:
            @client.tracked("E", user_id="self.id")
            async def method(self, x: int) -> None:
                return None

            @classmethod
            @client.tracked("E", user_id="cls.id")
            def rows(cls) -> Iterator[int]:
                yield 1

        assert inspect.iscoroutinefunction(Service().method)
        assert ["x"] == list(inspect.signature(Service().method).parameters)
        assert inspect.isgeneratorfunction(Service.rows)

    def test_module_level_decorator(self, segment_server: ScriptedServer, client: Client) -> None:
        """otel_segment.tracked(client=...) is the same decorator as client.tracked."""

        @otel_segment.tracked("Module", user_id="user.id", client=client)
        def act(user: User) -> None:
            return None

        act(ADA)
        assert ["Module"] == [m["event"] for m in delivered(client, segment_server)]


class TestArguments:
    """Ids and properties come from the call's bound arguments."""

    def test_paths_through_mappings_and_attributes(
        self, segment_server: ScriptedServer, client: Client
    ) -> None:
        """Each part is a mapping key or an attribute; a None on the way gives None."""

        @dataclass
        class Request:
            user: Any
            headers: dict[str, str]

        @client.tracked(
            "Viewed",
            user_id="request.user.pk",
            properties={"agent": "request.headers.user-agent", "team": "request.user.team.name"},
        )
        def view(request: Request) -> None:
            return None

        view(Request({"pk": 5, "team": None}, {"user-agent": "curl"}))
        [message] = delivered(client, segment_server)
        assert "5" == message["userId"]
        assert {"agent": "curl", "team": None} == props(message)

    def test_property_forms(self, segment_server: ScriptedServer, client: Client) -> None:
        """A list keys by the last part, a dict by its keys, a callable gets args and result."""

        @client.tracked("List", user_id="user.id", properties=["report.kind", "fmt"])
        def listed(user: User, report: Report, fmt: str = "pdf") -> None:
            return None

        @client.tracked("Dict", user_id="user.id", properties={"size": "report.pages"})
        def mapped(user: User, report: Report) -> None:
            return None

        @client.tracked(
            "Callable",
            user_id="user.id",
            properties=lambda args, result: {"fmt": args["fmt"], "result": result},
        )
        def computed(user: User, fmt: str = "csv") -> int:
            return 42

        listed(ADA, Report("pdf"))
        mapped(ADA, report=Report("xls", 9))
        computed(ADA)
        got = [props(m) for m in delivered(client, segment_server)]
        assert [{"kind": "pdf", "fmt": "pdf"}, {"size": 9}, {"fmt": "csv", "result": 42}] == got

    def test_callable_ids_get_all_arguments_with_defaults(
        self, segment_server: ScriptedServer, client: Client
    ) -> None:
        """An id callable receives every parameter, *args and **kwargs included."""
        seen: list[dict[str, Any]] = []

        def actor(args: dict[str, Any]) -> str:
            seen.append(args)
            return "anon-1"

        @client.tracked("Called", anonymous_id=actor)
        def call(a: int, /, b: int, *rest: int, c: int = 3, **extra: int) -> None:
            return None

        call(1, 2, 9, d=4)
        [message] = delivered(client, segment_server)
        assert "anon-1" == message["anonymousId"]
        assert [{"a": 1, "b": 2, "rest": (9,), "c": 3, "extra": {"d": 4}}] == seen

    def test_paths_into_every_kind_of_parameter(
        self, segment_server: ScriptedServer, client: Client
    ) -> None:
        """Positional-only, keyword-only with a default, *args and **kwargs roots resolve."""

        @client.tracked("Kinds", user_id="user.id", properties=["fmt", "size", "rest", "extra.tag"])
        def kinds(user: User, /, *rest: int, fmt: str = "pdf", size: int, **extra: str) -> None:
            return None

        kinds(ADA, 1, 2, size=3, tag="t")
        [message] = delivered(client, segment_server)
        assert {"fmt": "pdf", "size": 3, "rest": [1, 2], "tag": "t"} == props(message)

    def test_uuid_and_number_ids_are_sent_as_strings(
        self, segment_server: ScriptedServer, client: Client
    ) -> None:
        """A UUID primary key and an int id arrive as strings."""
        key = uuid.uuid4()

        @client.tracked("Ids", user_id="user", anonymous_id="number")
        def ids(user: uuid.UUID, number: int) -> None:
            return None

        ids(key, 7)
        [message] = delivered(client, segment_server)
        assert (str(key), "7") == (message["userId"], message["anonymousId"])


class TestDecorationErrors:
    """Mistakes fail when decorating, naming what is wrong."""

    def test_path_typo_names_path_and_function(self, client: Client) -> None:
        """A path whose first part is not a parameter fails at decoration."""

        def generate(user: User) -> None:
            return None

        with pytest.raises(ValueError, match=r"'usr\.id'.*generate.*'usr' is not a parameter"):
            client.tracked("E", user_id="usr.id")(generate)
        with pytest.raises(ValueError, match=r"'report\.kind'.*generate"):
            client.tracked("E", user_id="user.id", properties=["report.kind"])(generate)

    @pytest.mark.parametrize(
        ("kwargs", "error", "match"),
        [
            ({"user_id": "user.id", "properties": "user.id"}, TypeError, "list of paths"),
            ({"user_id": "user.", "properties": None}, ValueError, "empty part"),
            ({"user_id": 5, "properties": None}, TypeError, "dotted path or a callable"),
            ({"user_id": "user.id", "properties": ["user.id", "id"]}, ValueError, "'id'"),
            ({"user_id": "user.id", "properties": {"duration_ms": "id"}}, ValueError, "itself"),
            ({"user_id": "user.id", "properties": {"": "id"}}, TypeError, "non-empty"),
        ],
    )
    def test_bad_arguments(
        self, client: Client, kwargs: dict[str, Any], error: type[Exception], match: str
    ) -> None:
        """Wrong shapes of ids and properties are refused when decorating."""

        def act(user: User, id: str) -> None:
            return None

        with pytest.raises(error, match=match):
            client.tracked("E", **kwargs)(act)

    def test_bad_decorator_arguments(self, client: Client) -> None:
        """Event, client and track_errors are checked before any function is seen."""
        with pytest.raises(ValueError, match="non-empty"):
            tracked("", user_id="u")
        with pytest.raises(TypeError, match="event name"):
            tracked(None, user_id="u")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="Client"):
            tracked("E", user_id="u", client="c")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="track_errors"):
            client.tracked("E", user_id="u", track_errors=1)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="callable"):
            client.tracked("E", user_id="u")(42)  # type: ignore[type-var]


class TestCallErrors:
    """A raising call propagates untouched; its event carries the error."""

    def test_exception_identity_and_traceback(
        self, segment_server: ScriptedServer, client: Client
    ) -> None:
        """The very exception object arrives, its traceback ending at the raise."""
        raised: list[Exception] = []

        @client.tracked("Charged", user_id="user.id")
        def charge(user: User) -> None:
            error = ValueError("card declined " + "x" * 2000)
            raised.append(error)
            raise error

        with pytest.raises(ValueError, match="card declined") as caught:
            charge(ADA)

        assert raised[0] is caught.value
        assert (None, None) == (caught.value.__cause__, caught.value.__context__)
        last = traceback.extract_tb(caught.value.__traceback__)[-1]
        assert ("charge", "raise error") == (last.name, last.line)
        [message] = delivered(client, segment_server)
        properties = props(message)
        assert (True, "ValueError") == (properties["error"], properties["error_type"])
        assert properties["error_message"].startswith("card declined xxx")
        assert 500 == len(properties["error_message"])

    def test_async_exception_identity(self, segment_server: ScriptedServer, client: Client) -> None:
        """An async function's exception arrives as raised, with a qualified type name."""
        error = asyncio.InvalidStateError("late")

        @client.tracked("Awaited", user_id="user.id")
        async def wait(user: User) -> None:
            raise error

        with pytest.raises(asyncio.InvalidStateError) as caught:
            asyncio.run(wait(ADA))

        assert error is caught.value
        [message] = delivered(client, segment_server)
        assert "asyncio.exceptions.InvalidStateError" == message["properties"]["error_type"]

    def test_track_errors_false_sends_nothing_for_a_raise(
        self, segment_server: ScriptedServer, client: Client
    ) -> None:
        """Without track_errors a call that raised sends no event; a success still does."""

        @client.tracked("Maybe", user_id="user.id", track_errors=False)
        def maybe(user: User, fail: bool) -> None:
            if fail:
                raise RuntimeError

        with pytest.raises(RuntimeError):
            maybe(ADA, fail=True)
        maybe(ADA, fail=False)
        [message] = delivered(client, segment_server)
        assert "error" not in message["properties"]


class TestTrackingNeverRaises:
    """What cannot be sent is counted and logged; the call's result is returned."""

    @pytest.mark.parametrize(
        ("options", "logged"),
        [
            ({"user_id": "user.missing"}, "'user.missing' failed at 'missing'"),
            ({"user_id": "user.id", "properties": ["user.nope"]}, "'user.nope'"),
            ({"user_id": lambda _: None}, "needs a user_id or an anonymous_id"),
            ({}, "needs a user_id or an anonymous_id"),
            ({"user_id": lambda _: object()}, "resolved to a object"),
            ({"user_id": "user.id", "properties": lambda *_: [1]}, "not a mapping"),
            ({"user_id": "user.id", "properties": lambda *_: 1 / 0}, "ZeroDivisionError"),
        ],
    )
    def test_unresolvable_event_is_rejected(
        self,
        segment_server: ScriptedServer,
        client: Client,
        caplog: pytest.LogCaptureFixture,
        options: dict[str, Any],
        logged: str,
    ) -> None:
        """A failed path, a missing id or a broken callable: rejected, warned, no event."""

        @client.tracked("E", **options)
        def act(user: User) -> str:
            return "result"

        with caplog.at_level(logging.WARNING, "otel_segment"):
            assert "result" == act(ADA)

        assert [] == delivered(client, segment_server)
        assert 1 == client.stats()["rejected"]
        assert logged in caplog.text
        assert "test_decorators" in caplog.text  # the decorated function is named

    def test_closed_client_is_logged(
        self, segment_server: ScriptedServer, caplog: pytest.LogCaptureFixture
    ) -> None:
        """After the client shut down, calls still work; each logs that nothing was sent."""
        closed = Client("test-key", host=segment_server.url)
        closed.shutdown()

        @closed.tracked("E", user_id="user.id")
        def act(user: User) -> int:
            return 1

        with caplog.at_level(logging.WARNING, "otel_segment"):
            assert 1 == act(ADA)
        assert "was shut down" in caplog.text

    def test_inside_the_pipeline_is_refused(
        self, segment_server: ScriptedServer, client: Client
    ) -> None:
        """A decorated call from the pipeline's own code (e.g. on_error) is not tracked."""

        @client.tracked("E", user_id="user.id")
        def act(user: User) -> int:
            return 1

        with inside_pipeline():
            assert 1 == act(ADA)
        assert [] == delivered(client, segment_server)
        assert 1 == client.stats()["rejected"]

    def test_an_id_callable_raising_an_unprintable_error(self, client: Client) -> None:
        """The call returns its result; the event is counted as rejected."""

        class UnprintableError(Exception):
            def __str__(self) -> str:
                raise RuntimeError("no text")

        def user_id(_arguments: dict[str, Any]) -> str:
            raise UnprintableError

        @client.tracked("Computed", user_id=user_id)
        def compute(x: int) -> int:
            return x * 2

        assert 4 == compute(2)
        assert 1 == client.stats()["rejected"]


class TestGenerators:
    """A generator's event is sent however its iteration ends."""

    def test_closed_early(self, segment_server: ScriptedServer, client: Client) -> None:
        """close() after one item sends the event, without error fields."""

        @client.tracked("Rows", user_id="user.id")
        def rows(user: User) -> Generator[int]:
            yield from range(10)

        iterator = rows(ADA)
        assert 0 == next(iterator)
        iterator.close()
        [message] = delivered(client, segment_server)
        assert {} == props(message)

    def test_garbage_collected_in_its_call_context(
        self, segment_server: ScriptedServer, client: Client, tracer: Tracer
    ) -> None:
        """A generator dropped half-way reports, with the trace of the call that made it."""

        @client.tracked("Rows", user_id="user.id")
        def rows(user: User) -> Iterator[int]:
            yield from range(10)

        with tracer.start_as_current_span("export") as span:
            iterator = rows(ADA)
            next(iterator)
        del iterator
        gc.collect()
        [message] = delivered(client, segment_server)
        assert (
            format(span.get_span_context().trace_id, "032x")
            == (message["context"]["trace"]["trace_id"])
        )

    def test_raising_generator_and_forwarding(
        self, segment_server: ScriptedServer, client: Client
    ) -> None:
        """send() and throw() reach the generator; an escaping error is in the event."""

        @client.tracked("Echo", user_id="user.id")
        def echo(user: User) -> Generator[object, object]:
            received = yield "ready"
            while True:
                try:
                    received = yield received
                except KeyError:
                    received = "caught"

        iterator = echo(ADA)
        assert "ready" == next(iterator)
        assert "ping" == iterator.send("ping")
        assert "caught" == iterator.throw(KeyError("k"))
        with pytest.raises(ValueError, match="stop"):
            iterator.throw(ValueError("stop"))
        [message] = delivered(client, segment_server)
        assert "ValueError" == message["properties"]["error_type"]

    def test_async_generator_closed_early_and_abandoned(
        self, segment_server: ScriptedServer, client: Client
    ) -> None:
        """
        aclose() sends the event at once; an unfinished generator sends it too.

        A generator left unfinished at the end of asyncio.run is finalized by the loop.
        """

        @client.tracked("Stream", user_id="user.id", properties=["tag"])
        async def stream(user: User, tag: str) -> AsyncGenerator[int]:
            for number in range(10):
                yield number

        async def main() -> None:
            closed = stream(ADA, "closed")
            assert 0 == await anext(closed)
            await closed.aclose()
            async for _ in stream(ADA, "abandoned"):
                break

        asyncio.run(main())
        tags = [props(m)["tag"] for m in delivered(client, segment_server)]
        assert ["abandoned", "closed"] == sorted(tags)

    def test_async_generator_asend_and_athrow(
        self, segment_server: ScriptedServer, client: Client
    ) -> None:
        """asend() and athrow() reach the async generator."""

        @client.tracked("Echo", user_id="user.id")
        async def echo(user: User) -> AsyncGenerator[object, object]:
            received = yield "ready"
            while True:
                try:
                    received = yield received
                except KeyError:
                    received = "caught"

        async def main() -> list[object]:
            iterator = echo(ADA)
            got = [await anext(iterator), await iterator.asend("ping")]
            got.append(await iterator.athrow(KeyError("k")))
            await iterator.aclose()
            return got

        assert ["ready", "ping", "caught"] == asyncio.run(main())
        assert 1 == len(delivered(client, segment_server))


class TestTraceContext:
    """Inside an active span, events carry its trace and span ids."""

    def test_every_kind_in_a_span(
        self, segment_server: ScriptedServer, client: Client, tracer: Tracer
    ) -> None:
        """Sync, async and generator calls inside a span join its trace."""

        @client.tracked("Sync", user_id="user.id")
        def sync(user: User) -> None:
            return None

        @client.tracked("Async", user_id="user.id")
        async def coroutine(user: User) -> None:
            await asyncio.sleep(0)

        @client.tracked("Gen", user_id="user.id")
        def generator(user: User) -> Iterator[int]:
            yield 1

        async def in_span() -> str:
            with tracer.start_as_current_span("async request") as span:
                await coroutine(ADA)
                return format(span.get_span_context().span_id, "016x")

        with tracer.start_as_current_span("request") as span:
            sync(ADA)
            list(generator(ADA))
            span_id = format(span.get_span_context().span_id, "016x")
        async_span_id = asyncio.run(in_span())
        sync(ADA)  # outside any span
        traces = [
            (m["event"], m["context"].get("trace", {}).get("span_id"))
            for m in delivered(client, segment_server)
        ]
        expected = [("Sync", span_id), ("Gen", span_id), ("Async", async_span_id), ("Sync", None)]
        assert expected == traces


class TestDefaultClient:
    """Without client=, the default client is looked up at each call."""

    def test_decorated_before_the_default_client_exists(
        self,
        segment_server: ScriptedServer,
        client: Client,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """Decorating builds no client; a call uses whatever default exists then."""

        @tracked("Later", user_id="user.id")
        def act(user: User) -> None:
            return None

        assert otel_segment.default_client is None
        monkeypatch.setattr(otel_segment, "default_client", client)
        act(ADA)
        assert ["Later"] == [m["event"] for m in delivered(client, segment_server)]

    @pytest.mark.usefixtures("no_write_key")
    def test_no_usable_default_client(
        self, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
    ) -> None:
        """With no write key anywhere, the call works and a warning says why nothing went."""

        @tracked("Nowhere", user_id="user.id")
        def act(user: User) -> int:
            return 3

        with caplog.at_level(logging.WARNING, "otel_segment"):
            assert 3 == act(ADA)
        assert "write_key is required" in caplog.text
        assert otel_segment.default_client is None


class TestSnapshot:
    """``@snapshot`` reports a function's mapping on the client's timer and at shutdown."""

    def test_reports_on_its_interval(self, segment_server: ScriptedServer) -> None:
        """Every 0.05 s a group call carries the state; the function stays callable."""
        calls = itertools.count()
        with Client("test-key", host=segment_server.url, flush_interval=0.05) as client:

            @snapshot(0.05, group_id="install-42", client=client)
            def state() -> dict[str, object]:
                return {"version": "7.1", "call": next(calls)}

            assert segment_server.wait_for_messages(2)
            first, second = segment_server.messages[:2]
            assert {"version": "7.1", "call": 0} == first["traits"]
            assert {"version": "7.1", "call": 1} == second["traits"]
            assert ("group", "install-42", "install-42", None) == (
                first["type"],
                first["groupId"],
                first["anonymousId"],
                first["userId"],
            )
            assert "7.1" == state()["version"]

    @pytest.mark.parametrize(
        ("options", "expected"),
        [
            ({"group_id": "g1"}, ("group", None, "g1", "g1")),
            ({"group_id": "g1", "user_id": "admin"}, ("group", "admin", None, "g1")),
            ({"type": "identify", "user_id": "admin"}, ("identify", "admin", None, None)),
            ({"type": "identify", "anonymous_id": "box-1"}, ("identify", None, "box-1", None)),
        ],
    )
    def test_reports_once_more_at_shutdown(
        self,
        segment_server: ScriptedServer,
        options: dict[str, Any],
        expected: tuple[str, str | None, str | None, str | None],
    ) -> None:
        """A long interval: the one report is the one made when the client shuts down."""
        with Client("test-key", host=segment_server.url) as client:

            @snapshot(3600, client=client, **options)
            def state() -> dict[str, object]:
                return {"nodes": 12}

        [message] = segment_server.messages
        got = (message["type"], message["userId"], message["anonymousId"], message.get("groupId"))
        assert expected == got
        assert {"nodes": 12} == message["traits"]

    def test_a_raising_function_is_reported_and_the_schedule_goes_on(
        self, segment_server: ScriptedServer, caplog: pytest.LogCaptureFixture
    ) -> None:
        """The first run raises (counted, logged); the next one is sent."""
        calls = itertools.count()

        def state() -> dict[str, object]:
            call = next(calls)
            if call == 0:
                raise RuntimeError("database down")
            return {"call": call}

        with (
            caplog.at_level(logging.WARNING, "otel_segment"),
            Client("test-key", host=segment_server.url, flush_interval=0.05) as client,
        ):
            snapshot(0.05, group_id="g1", client=client)(state)
            assert segment_server.wait_for_messages(1)
            assert 1 == client.stats()["rejected"]
        assert {"call": 1} == segment_server.messages[0]["traits"]
        assert "RuntimeError: database down" in caplog.text
        assert "state" in caplog.text

    def test_a_result_that_is_not_a_mapping_is_rejected(
        self, segment_server: ScriptedServer, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A list instead of a mapping: counted and logged, nothing sent."""
        with (
            caplog.at_level(logging.WARNING, "otel_segment"),
            Client("test-key", host=segment_server.url) as client,
        ):
            snapshot(3600, group_id="g1", client=client)(lambda: [1, 2])  # type: ignore[type-var]
        assert [] == segment_server.messages
        assert 1 == client.stats()["rejected"]
        assert "returned list, not a mapping" in caplog.text

    @pytest.mark.parametrize(
        ("every", "options", "error", "match"),
        [
            (0, {"group_id": "g"}, ValueError, "every must be > 0"),
            (float("nan"), {"group_id": "g"}, ValueError, "every must be > 0"),
            (True, {"group_id": "g"}, TypeError, "number of seconds"),
            (1, {}, ValueError, "needs group_id"),
            (1, {"type": "track", "group_id": "g"}, ValueError, "'group' or 'identify'"),
            (1, {"type": "identify"}, ValueError, "user_id= or anonymous_id="),
            (1, {"type": "identify", "user_id": "u", "group_id": "g"}, ValueError, "group_id="),
            (1, {"group_id": 1.5}, TypeError, "group_id must be"),
            (1, {"group_id": "g", "client": "c"}, TypeError, "Client"),
        ],
    )
    def test_bad_arguments(
        self, every: float, options: dict[str, Any], error: type[Exception], match: str
    ) -> None:
        """Every argument is checked when decorating."""
        with pytest.raises(error, match=match):
            snapshot(every, **options)

    def test_the_function_must_take_no_arguments(self, client: Client) -> None:
        """A function with a required parameter is refused at decoration."""

        def state(node: str) -> dict[str, object]:
            return {"node": node}

        with pytest.raises(TypeError, match="must take no arguments"):
            snapshot(1, group_id="g", client=client)(state)  # type: ignore[type-var]

    def test_follows_the_default_client(
        self, segment_server: ScriptedServer, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Decorated before configure(): registered on each default client when it is built."""

        @snapshot(3600, group_id="g1")
        def state() -> dict[str, object]:
            return {"nodes": 3}

        assert otel_segment.default_client is None  # decorating built no client
        try:
            otel_segment.configure(write_key="k1", host=segment_server.url)
            otel_segment.configure(write_key="k2", host=segment_server.url)  # replaces the first
        finally:
            otel_segment.shutdown()
        keys = sorted(request.json["writeKey"] for request in segment_server.requests)
        assert ["k1", "k2"] == keys
        assert [{"nodes": 3}] * 2 == [message["traits"] for message in segment_server.messages]

    def test_registers_at_once_on_an_existing_default_client(
        self, segment_server: ScriptedServer, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """With a live default client, the snapshot registers on it when decorating."""
        with Client("test-key", host=segment_server.url) as client:
            monkeypatch.setattr(otel_segment, "default_client", client)
            snapshot(3600, group_id="g1")(lambda: {"nodes": 1})
        assert [{"nodes": 1}] == [message["traits"] for message in segment_server.messages]


class TestExample:
    """examples/decorators.py runs on its own."""

    def test_runs_and_shows_the_events(self) -> None:
        """It exits 0 and prints every event, the snapshot and the joined trace."""
        done = subprocess.run(
            [sys.executable, str(EXAMPLE)], capture_output=True, text=True, timeout=30, check=False
        )

        assert 0 == done.returncode, done.stderr
        lines = done.stdout.splitlines()
        assert "rows: 5" in lines
        for expected in (
            'user=u-1 anon=-  "Report Generated" {kind=quarterly, fmt=pdf, duration_ms=',
            'user=u-2 anon=-  "Export Finished" {rows=128, target=s3://bucket/export.csv',
            'user=u-1 anon=-  "Invoice Sent" {plan=pro',
            'user=- anon=session-7  "Rows Streamed"',
            'user=u-1 anon=-  "Card Charged" {cents=4200, duration_ms=',
            "group     user=- anon=install-42  group=install-42 {version=7.1, nodes=12",
        ):
            assert any(expected in line for line in lines), expected
        assert "error=true, error_type=RuntimeError" in done.stdout
        assert lines[-1].startswith("joined to trace ")
        assert lines[-1].endswith(": 1 event(s)")
