"""Tests for the Client's constructor: validation, env fallbacks, aliases, and secrecy."""

from __future__ import annotations

import logging
import logging.handlers
from typing import TYPE_CHECKING, Any

import pytest
from _helpers import FAST_RETRY, WRITE_KEY, Clients, ErrorLog

from otel_segment import Client, RetryPolicy
from otel_segment.pipeline.client import DEFAULT_HOST, ENV_HOST, ENV_WRITE_KEY
from otel_segment.sink import Sink

if TYPE_CHECKING:
    from pathlib import Path

    from _server import ScriptedServer


@pytest.fixture
def no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Neither SEGMENT_WRITE_KEY nor SEGMENT_HOST is set."""
    monkeypatch.delenv(ENV_WRITE_KEY, raising=False)
    monkeypatch.delenv(ENV_HOST, raising=False)


# (constructor options, exception, text naming the option)
BAD_OPTIONS: list[tuple[dict[str, Any], type[Exception], str]] = [
    ({"flush_at": 0}, ValueError, "flush_at"),
    ({"flush_at": "x"}, TypeError, "flush_at"),
    ({"flush_at": 1.5}, TypeError, "flush_at"),
    ({"flush_interval": -1}, ValueError, "flush_interval"),
    ({"flush_interval": 0}, ValueError, "flush_interval"),
    ({"flush_interval": float("nan")}, ValueError, "flush_interval"),
    ({"flush_interval": "1"}, TypeError, "flush_interval"),
    ({"timeout": 0}, ValueError, "timeout"),
    ({"timeout": True}, TypeError, "timeout"),
    ({"gzip": "yes"}, TypeError, "gzip"),
    ({"send": 1}, TypeError, "send"),
    ({"sync_mode": None}, TypeError, "sync_mode"),
    ({"debug": "no"}, TypeError, "debug"),
    ({"retry": 3}, TypeError, "retry"),
    ({"on_error": 5}, TypeError, "on_error"),
    ({"host": "ftp://x"}, ValueError, "host"),
    ({"host": 5}, TypeError, "host"),
    ({"write_key": 5}, TypeError, "write_key"),
    ({"max_queue_size": 0}, ValueError, "max_queue_size"),
    ({"max_batch_bytes": True}, TypeError, "max_batch_bytes"),
    ({"max_message_bytes": 0}, ValueError, "max_message_bytes"),
    ({"max_message_bytes": 1000, "max_batch_bytes": 1000}, ValueError, "max_message_bytes"),
    ({"default_context": "x"}, TypeError, "default_context"),
    ({"spool": "x.db", "sync_mode": True}, ValueError, "spool"),
    ({"spool": "x.db", "spool_max_bytes": 100}, ValueError, "spool_max_bytes"),
    ({"spool_max_bytes": 0}, ValueError, "spool_max_bytes"),
    ({"spool": 5}, TypeError, "spool"),
    ({"max_in_flight": 0}, ValueError, "max_in_flight"),
    ({"exit_timeout": -1}, ValueError, "exit_timeout"),
    ({"proxies": "http://proxy"}, TypeError, "proxies"),
    ({"verify": 5}, TypeError, "verify"),
    ({"verify": "/no/such/ca.pem"}, ValueError, "verify"),
    ({"cert": "/no/such/cert.pem"}, ValueError, "cert"),
    ({"cert": 5}, TypeError, "cert"),
    ({"max_retries": -1}, ValueError, "max_retries"),
    ({"max_retries": "3"}, ValueError, "max_retries"),
    ({"max_retries": 3, "retry": RetryPolicy()}, TypeError, "max_retries"),
    ({"flush_at": 50, "upload_size": 10}, TypeError, "upload_size"),
    ({"flush_interval": 1.0, "upload_interval": 2.0}, TypeError, "upload_interval"),
    ({"upload_size": 0}, ValueError, "flush_at"),
    ({"max_batch_bytes": 60}, ValueError, "max_batch_bytes"),
    ({"max_message_bytes": 40_000, "max_batch_bytes": 20_000}, ValueError, "max_message_bytes"),
    ({"thread": 0}, ValueError, "thread"),
    ({"thread": 3, "max_in_flight": 4}, TypeError, "thread"),
    ({"max_total_backoff_duration": -1}, ValueError, "max_total_backoff_duration"),
    ({"max_rate_limit_duration": "5"}, TypeError, "max_rate_limit_duration"),
    ({"max_rate_limit_duration": 5, "retry": RetryPolicy()}, TypeError, "max_rate_limit"),
    ({"log_handler": "stderr"}, TypeError, "log_handler"),
    ({"oauth_client_id": "id"}, ValueError, "missing: oauth_client_key, oauth_key_id"),
    ({"oauth_key_id": 5, "oauth_client_id": "i", "oauth_client_key": "k"}, TypeError, "key_id"),
    (
        {"oauth_client_id": "i", "oauth_client_key": "k", "oauth_key_id": "kid"},
        ValueError,
        "oauth_client_key must be an RSA private key",
    ),
    (
        {
            "oauth_client_id": "i",
            "oauth_client_key": "k",
            "oauth_key_id": "k",
            "oauth_auth_server": "x",
        },
        ValueError,
        "oauth_auth_server",
    ),
]


class TestValidation:
    """Every option is checked at construction, with an error naming it."""

    @pytest.mark.parametrize(
        ("options", "error", "name"),
        BAD_OPTIONS,
        ids=[f"{'-'.join(options)}-{error.__name__}" for options, error, _ in BAD_OPTIONS],
    )
    def test_bad_option(self, options: dict[str, Any], error: type[Exception], name: str) -> None:
        """The constructor raises, naming the option."""
        settings = {"write_key": "k", "host": "http://127.0.0.1:9", **options}
        with pytest.raises(error, match=name):
            Client(**settings)

    @pytest.mark.usefixtures("no_env")
    def test_write_key_required(self) -> None:
        """Without a write key or $SEGMENT_WRITE_KEY, the error names both."""
        with pytest.raises(ValueError, match=f"write_key.*{ENV_WRITE_KEY}"):
            Client()

    @pytest.mark.usefixtures("no_env")
    def test_send_false_needs_no_key(self) -> None:
        """send=False builds messages without a write key; the host defaults to Segment's."""
        with Client(send=False) as client:
            assert (True, DEFAULT_HOST) == (client.track("u1", "Ev")[0], client.host)

    def test_falsy_on_error_means_none(self, clients: Clients) -> None:
        """on_error=False (or 0) is accepted as 'no callback', as analytics-python does."""
        assert clients(on_error=False).on_error is None

    def test_tls_paths_accepted(self, clients: Clients, tmp_path: Path) -> None:
        """Existing verify and cert paths are kept as given."""
        ca, cert, key = (tmp_path / name for name in ("ca.pem", "c.pem", "c.key"))
        for path in (ca, cert, key):
            path.write_text("x")
        client = clients(verify=str(ca), cert=(str(cert), str(key)))
        assert (str(ca), (str(cert), str(key))) == (client.config.verify, client.config.cert)


class TestMessageBytes:
    """max_message_bytes follows max_batch_bytes unless given."""

    def test_derived_from_a_small_batch(self, clients: Clients) -> None:
        """max_batch_bytes=20_000 alone works: a message may fill a batch, envelope aside."""
        client = clients(max_batch_bytes=20_000)
        envelope = len(b'{"batch":[],"sentAt":"2026-01-01T00:00:00.000+00:00","writeKey":""}')

        assert 20_000 - envelope - len(WRITE_KEY) == client.config.max_message_bytes

    def test_segment_limit_by_default(self, clients: Clients) -> None:
        """With the default batch limit, a message may be 32 KiB."""
        assert 32 * 1024 == clients().config.max_message_bytes

    def test_given_wins(self, clients: Clients) -> None:
        """A max_message_bytes that fits is kept as given."""
        assert (
            5_000
            == clients(max_batch_bytes=20_000, max_message_bytes=5_000).config.max_message_bytes
        )


class TestAnalyticsPythonOptions:
    """segment-analytics-python 2.4's constructor arguments, mapped to ours."""

    def test_positional_order(self, segment_server: ScriptedServer) -> None:
        """Client('k', host, True, ...) binds as in 2.4, up to max_rate_limit_duration."""
        handler = logging.NullHandler()
        with Client(
            "k", segment_server.url, False, 50, True, None, True, 2, False, 3.0, None, 4, 7, 2.5,  # noqa: FBT003
            handler, None, None, None, "https://auth.invalid", "s", 120.0, 30.0,
        ) as client:  # fmt: skip
            config = client.config
            try:
                assert (50, True, 3.0, 4, 7, 2.5) == (
                    config.max_queue_size,
                    config.gzip,
                    config.timeout,
                    config.max_in_flight,
                    config.flush_at,
                    config.flush_interval,
                )
                assert (3, 120.0, 30.0) == (
                    config.retry.max_attempts,
                    config.retry.max_elapsed,
                    config.retry.max_retry_after,
                )
                assert handler in logging.getLogger("otel_segment").handlers
            finally:
                logging.getLogger("otel_segment").removeHandler(handler)

    def test_log_handler_gets_pipeline_logs(self, segment_server: ScriptedServer) -> None:
        """log_handler receives what the otel_segment logger says (here: a failed batch)."""
        handler = logging.handlers.BufferingHandler(capacity=1000)
        records = handler.buffer
        segment_server.respond(400)
        try:
            with Client("k", segment_server.url, log_handler=handler) as client:
                client.track("u1", "Ev")
                assert client.flush(5)
        finally:
            logging.getLogger("otel_segment").removeHandler(handler)

        assert any("not delivered" in record.getMessage() for record in records)

    def test_thread_is_requests_in_flight(self, clients: Clients) -> None:
        """thread=N lets N requests be under way at once."""
        assert 3 == clients(thread=3).config.max_in_flight


class TestEnvironment:
    """SEGMENT_WRITE_KEY and SEGMENT_HOST stand in for missing arguments."""

    def test_env_fallbacks(
        self, segment_server: ScriptedServer, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A client built with no arguments sends to $SEGMENT_HOST with $SEGMENT_WRITE_KEY."""
        monkeypatch.setenv(ENV_WRITE_KEY, "env-key")
        monkeypatch.setenv(ENV_HOST, segment_server.url + "/")
        with Client(flush_interval=30) as client:
            client.track("u1", "Ev")
            assert client.flush(timeout=5)

        assert (segment_server.url, "env-key") == (client.host, client.write_key)
        [request] = segment_server.requests
        assert "env-key" == request.json["writeKey"]

    def test_arguments_win(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Arguments win over the environment."""
        monkeypatch.setenv(ENV_WRITE_KEY, "env-key")
        monkeypatch.setenv(ENV_HOST, "http://env.invalid")
        with Client("arg-key", "https://arg.invalid", send=False) as client:
            assert ("arg-key", "https://arg.invalid") == (client.write_key, client.host)


class TestAliases:
    """analytics-python's option names work."""

    def test_upload_size_and_interval(self, segment_server: ScriptedServer) -> None:
        """upload_size is flush_at; upload_interval is flush_interval."""
        with Client("k", segment_server.url, upload_size=3, upload_interval=2) as client:
            assert (3, 2.0) == (client.config.flush_at, client.config.flush_interval)

    def test_max_retries(self, clients: Clients) -> None:
        """max_retries counts retries after the first attempt."""
        assert 3 == clients(max_retries=2, retry=None).config.retry.max_attempts

    def test_max_retries_zero_means_one_attempt(
        self, segment_server: ScriptedServer, clients: Clients
    ) -> None:
        """max_retries=0: a 500 is not retried; the message fails."""
        errors = ErrorLog()
        client = clients(max_retries=0, retry=None, on_error=errors)
        segment_server.respond(500)
        client.track("u1", "Ev")

        assert client.flush(timeout=5)
        assert (1, 1, 0) == (
            len(segment_server.requests),
            client.stats()["failed"],
            client.stats()["retried"],
        )


class TestWriteKeySecrecy:
    """The write key never shows in reprs, logs or errors."""

    def test_reprs(self, clients: Clients) -> None:
        """repr() of the client and its parts leaves the key out."""
        client = clients()
        texts = [repr(client), repr(client._processor._transport), repr(client._processor)]
        texts.append(repr(client._processor._envelope))
        assert [] == [text for text in texts if WRITE_KEY in text]

    def test_failing_delivery_logs_and_errors(
        self,
        segment_server: ScriptedServer,
        clients: Clients,
        caplog: pytest.LogCaptureFixture,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """At DEBUG (ours and urllib3's) a failing delivery logs and reports no key."""
        caplog.set_level(logging.DEBUG, logger="otel_segment")
        caplog.set_level(logging.DEBUG, logger="urllib3")
        with Sink() as gone:
            dead_host = gone.url  # nothing listens here once the sink is closed
        errors = ErrorLog()
        logger = logging.getLogger("otel_segment")
        handlers, level = list(logger.handlers), logger.level
        try:
            refused = clients(host=dead_host, on_error=errors, debug=True)
            segment_server.respond_many(500, 3, body=b"bad " + WRITE_KEY[:3].encode())
            failing = clients(on_error=errors, retry=FAST_RETRY.replace(max_attempts=3))
            refused.track("u1", "Ev", properties={"p": 1})
            failing.track("u1", "Ev")
            assert errors.wait_for_messages(2)
        finally:
            logger.handlers[:] = handlers
            logger.setLevel(level)

        assert any(r.name == "urllib3.connectionpool" for r in caplog.records)
        assert any(r.levelno == logging.ERROR for r in caplog.records)
        texts = [record.getMessage() for record in caplog.records]
        texts += [str(error) for error, _ in errors.calls] + [capsys.readouterr().err]
        assert [] == [text for text in texts if WRITE_KEY in text]
        assert {"Ev"} == {message["event"] for message in errors.messages}
