"""The probes behind ``tierstream status``: the real Kafka and PostgreSQL answer them; a port that accepts
connections but never answers (what a stopped — SIGSTOP — or wedged server looks like from outside) is
reported as not answering within the timeout, not as running."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import pytest

from shared.db.engine import to_libpq_url
from tierstream import stack

pytestmark = pytest.mark.integration


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port whose connections are accepted and then left unanswered."""
    server = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                held.append(server.accept()[0])
            except OSError:  # closed: the test is over
                return

    threading.Thread(target=accept, daemon=True).start()
    yield server.getsockname()[1]
    server.close()
    for conn in held:
        conn.close()


def test_the_real_kafka_and_postgresql_answer_the_probes(kafka_bootstrap: str, pg_server: str) -> None:
    assert stack.kafka_unanswered(kafka_bootstrap) is None
    assert stack.postgres_unanswered(to_libpq_url(pg_server)) is None


def test_a_port_that_accepts_connections_but_never_answers_is_reported_within_the_timeout(silent_port: int) -> None:
    assert stack.listening(silent_port)
    assert stack.kafka_unanswered(f"127.0.0.1:{silent_port}", timeout_s=0.5) == "no answer within 0.5 s"
    url = f"postgresql://tierstream:tierstream@127.0.0.1:{silent_port}/postgres"
    assert stack.postgres_unanswered(url, timeout_s=0.5) == "no answer within 0.5 s"


def test_a_postgresql_that_refuses_the_session_is_reported_with_its_reason(pg_server: str) -> None:
    url = urlsplit(to_libpq_url(pg_server))
    wrong = urlunsplit(url._replace(netloc=f"{url.username}:wrong-password@{url.hostname}:{url.port}"))
    reason = stack.postgres_unanswered(wrong)
    assert reason is not None and "password authentication failed" in reason
