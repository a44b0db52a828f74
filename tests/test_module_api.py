"""Tests for the module-level API: settings as attributes, a lazily built default client."""

from __future__ import annotations

import inspect
import logging
from typing import TYPE_CHECKING, Any

import pytest
from _helpers import ErrorLog, message_ids
from _oauth import private_key_pem

import otel_segment
from otel_segment import Client, _default
from otel_segment.pipeline.client import ENV_HOST, ENV_WRITE_KEY

if TYPE_CHECKING:
    from collections.abc import Iterator

    from _server import ScriptedServer


@pytest.fixture(autouse=True)
def module_state(
    monkeypatch: pytest.MonkeyPatch, segment_server: ScriptedServer
) -> Iterator[list[Client]]:
    """Default settings, no default client; afterwards every client built is shut down."""
    del segment_server  # torn down after this fixture: the last deliveries reach it
    monkeypatch.delenv(ENV_WRITE_KEY, raising=False)
    monkeypatch.delenv(ENV_HOST, raising=False)
    _default.reset()
    built: list[Client] = []
    yield built
    _default.reset()
    for client in built:
        client.shutdown(timeout=5)


@pytest.fixture
def configured(segment_server: ScriptedServer) -> None:
    """Point the module-level settings at the test server."""
    otel_segment.write_key = "module-key"
    otel_segment.host = segment_server.url


def current() -> Client:
    """The default client (which must exist)."""
    client = otel_segment.default_client
    assert client is not None
    return client


@pytest.mark.usefixtures("configured")
class TestCalls:
    """otel_segment.track(...) and friends go through the default client."""

    def test_six_calls_positional(self, segment_server: ScriptedServer) -> None:
        """All six calls work with analytics-python's positional arguments."""
        results = [
            otel_segment.track("u1", "Ev", {"a": 1}),
            otel_segment.identify("u1", {"plan": "pro"}),
            otel_segment.page("u1", "Docs", "Home", {"p": 1}),
            otel_segment.screen("u1", "App", "Main"),
            otel_segment.group("u1", "g1", {"seats": 2}),
            otel_segment.alias("old", "u1"),
        ]
        assert otel_segment.flush(timeout=5)

        assert all(ok for ok, _ in results)
        expected = ["track", "identify", "page", "screen", "group", "alias"]
        assert expected == [m["type"] for m in segment_server.messages]
        assert message_ids([m for _, m in results]) == message_ids(segment_server.messages)
        [request] = segment_server.requests
        assert "module-key" == request.json["writeKey"]

    def test_default_client_built_lazily(self) -> None:
        """default_client is None until the first call, then the client in use."""
        assert otel_segment.default_client is None
        otel_segment.track("u1", "Ev")
        client = current()
        assert (otel_segment.host, "module-key") == (client.host, client.write_key)
        otel_segment.track("u1", "Ev2")
        assert client is otel_segment.default_client

    def test_reset_to_none_builds_fresh(self, module_state: list[Client]) -> None:
        """Setting default_client to None makes the next call build a new one."""
        otel_segment.track("u1", "Ev")
        first = current()
        module_state.append(first)
        otel_segment.default_client = None
        otel_segment.track("u1", "Ev")
        assert first is not current()

    def test_closed_default_is_replaced(self) -> None:
        """A default client shut down by hand is replaced at the next call."""
        otel_segment.track("u1", "Ev")
        first = current()
        first.shutdown(timeout=5)
        assert otel_segment.track("u1", "Ev")[0]
        assert first is not current()

    def test_settings_reach_the_client(self) -> None:
        """Package attributes (and analytics-python's names) configure the default client."""
        errors = ErrorLog()
        otel_segment.on_error = errors
        otel_segment.gzip = True
        otel_segment.upload_size = 7
        otel_segment.upload_interval = 2.5
        otel_segment.max_retries = 2
        otel_segment.timeout = 3.0
        otel_segment.max_queue_size = 50
        otel_segment.track("u1", "Ev")
        client = current()

        assert (errors, True, 7, 2.5, 3, 3.0, 50) == (
            client.on_error,
            client.gzip,
            client.config.flush_at,
            client.config.flush_interval,
            client.config.retry.max_attempts,
            client.timeout,
            client.config.max_queue_size,
        )

    def test_send_false(self, segment_server: ScriptedServer) -> None:
        """otel_segment.send = False: calls succeed, nothing goes out."""
        otel_segment.send = False
        assert otel_segment.track("u1", "Ev")[0]
        assert otel_segment.flush(timeout=5)
        assert [] == segment_server.requests

    def test_sync_mode(self, segment_server: ScriptedServer) -> None:
        """otel_segment.sync_mode = True: delivered when the call returns."""
        otel_segment.sync_mode = True
        assert otel_segment.track("u1", "Ev")[0]
        assert 1 == len(segment_server.messages)

    @pytest.mark.parametrize("stop", ["shutdown", "join"])
    def test_shutdown_and_join(self, segment_server: ScriptedServer, stop: str) -> None:
        """shutdown()/join() deliver what is queued and clear the default client."""
        otel_segment.track("u1", "Ev")
        client = current()
        assert getattr(otel_segment, stop)(timeout=5)

        assert (True, None) == (client.closed, otel_segment.default_client)
        assert 1 == len(segment_server.messages)
        assert otel_segment.shutdown()


@pytest.mark.usefixtures("configured")
class TestAnalyticsPythonSettings:
    """segment-analytics-python 2.4's module attributes are honoured."""

    def test_version(self) -> None:
        """VERSION is the library's version."""
        assert otel_segment.__version__ == otel_segment.VERSION

    def test_every_setting_of_theirs_exists(self) -> None:
        """Each settings attribute of analytics-python 2.4 is one of ours, read at build."""
        analytics = pytest.importorskip("segment.analytics")
        theirs = {
            name
            for name in inspect.signature(analytics.Client).parameters
            if hasattr(analytics, name)
        }

        assert set() == theirs - set(_default.SETTINGS)

    def test_oauth_and_the_rest_reach_the_client(self) -> None:
        """oauth_*, thread, log_handler and the durations configure the default client."""
        handler = logging.NullHandler()
        otel_segment.oauth_client_id = "abc"
        otel_segment.oauth_client_key = private_key_pem()
        otel_segment.oauth_key_id = "kid-1"
        otel_segment.oauth_auth_server = "http://127.0.0.1:9"
        otel_segment.oauth_scope = "tracking_api:write"
        otel_segment.thread = 3
        otel_segment.log_handler = handler
        otel_segment.max_total_backoff_duration = 60.0
        otel_segment.max_rate_limit_duration = 20.0
        try:
            otel_segment.track("u1", "Ev")
            config = current().config
        finally:
            logging.getLogger("otel_segment").removeHandler(handler)

        assert config.oauth is not None
        assert ("abc", "kid-1", "http://127.0.0.1:9") == (
            config.oauth.client_id,
            config.oauth.key_id,
            config.oauth.auth_server,
        )
        assert (3, handler, 60.0, 20.0) == (
            config.max_in_flight,
            config.log_handler,
            config.retry.max_elapsed,
            config.retry.max_retry_after,
        )

    def test_half_an_oauth_setup_is_refused(self) -> None:
        """oauth_client_id alone is an error naming what is missing, not silently ignored."""
        otel_segment.oauth_client_id = "abc"
        with pytest.raises(ValueError, match="missing: oauth_client_key, oauth_key_id"):
            otel_segment.track("u1", "Ev")


class TestSignatures:
    """The module-level calls have the Client methods' signatures (for IDEs and mypy)."""

    @pytest.mark.parametrize("name", ["track", "identify", "page", "screen", "group", "alias"])
    def test_same_as_the_method(self, name: str) -> None:
        """inspect.signature of otel_segment.<call> is the method's, without self."""
        method = inspect.signature(getattr(Client, name))
        unbound = method.replace(parameters=list(method.parameters.values())[1:])

        assert unbound == inspect.signature(getattr(otel_segment, name))


class TestConfigure:
    """configure(**kwargs) builds the default client explicitly."""

    def test_configure(self, segment_server: ScriptedServer) -> None:
        """The configured client is the default; calls use its options."""
        client = otel_segment.configure(
            write_key="conf-key", host=segment_server.url, flush_interval=30
        )
        assert client is otel_segment.default_client
        otel_segment.track("u1", "Ev")
        assert otel_segment.flush(timeout=5)
        assert "conf-key" == segment_server.requests[0].json["writeKey"]

    def test_configure_replaces_and_shuts_down(self, segment_server: ScriptedServer) -> None:
        """A second configure() shuts the first client down, delivering its queue."""
        first = otel_segment.configure(write_key="k", host=segment_server.url, flush_interval=30)
        otel_segment.track("u1", "First")
        second = otel_segment.configure(write_key="k", host=segment_server.url)

        assert (True, False) == (first.closed, second.closed)
        assert ["First"] == [m["event"] for m in segment_server.messages]

    def test_configure_validates(self) -> None:
        """Bad options raise and leave the default client as it was."""
        with pytest.raises(ValueError, match="flush_at"):
            otel_segment.configure(write_key="k", flush_at=0)
        assert otel_segment.default_client is None

    def test_no_write_key(self) -> None:
        """Without a write key anywhere, the first call says how to give one."""
        with pytest.raises(ValueError, match=ENV_WRITE_KEY):
            otel_segment.track("u1", "Ev")

    def test_env_write_key(
        self, segment_server: ScriptedServer, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """$SEGMENT_WRITE_KEY and $SEGMENT_HOST serve the default client too."""
        monkeypatch.setenv(ENV_WRITE_KEY, "env-key")
        monkeypatch.setenv(ENV_HOST, segment_server.url)
        otel_segment.track("u1", "Ev")
        assert otel_segment.flush(timeout=5)
        assert "env-key" == segment_server.requests[0].json["writeKey"]


class TestSurface:
    """The module's public names are documented and sorted."""

    def test_all_sorted_and_present(self) -> None:
        """__all__ is sorted and every name in it exists."""
        names: list[str] = list(otel_segment.__all__)
        assert sorted(names) == names
        missing: list[Any] = [name for name in names if not hasattr(otel_segment, name)]
        assert [] == missing

    @pytest.mark.parametrize(
        "name", ["track", "identify", "page", "screen", "group", "alias", "flush", "join"]
    )
    def test_functions_documented(self, name: str) -> None:
        """Each module-level function has its name and a docstring."""
        function = getattr(otel_segment, name)
        assert (name, True) == (function.__name__, bool(function.__doc__))
