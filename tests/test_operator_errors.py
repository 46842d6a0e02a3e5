"""Operator mistakes: one line on stderr saying what to do, a non-zero exit, nothing
changed, no traceback. Start-up behaviour runs the real CLI as processes; admin and
settings mistakes call cli.main in this process."""

from __future__ import annotations

import os
import queue
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from sqlalchemy import create_engine, text

from mailpool_server import cli, logs
from mailpool_server.app import App
from mailpool_server.config import Settings
from mailpool_server.rpc import server as rpc_server
from mailpool_server.startup import (
    ACCEPTED_URLS,
    PortInUse,
    SchemaRefused,
    check_free,
    database_url,
)
from mailpool_server.store.engine import make_engine
from mailpool_server.store.migrate import upgrade, upgrade_on
from tests.conftest import POSTGRES

# -- helpers -----------------------------------------------------------------------------


Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def mailpool(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Run:
    """cli.main on a fresh SQLite file: returns (exit code, stdout, stderr)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MAILPOOL_DATABASE_URL", f"sqlite:///{tmp_path / 'ops.db'}")
    # cli.main routes logging to stderr; the test process keeps pytest's handlers.
    monkeypatch.setattr(logs, "configure", lambda level="INFO": None)

    def run(*args: str) -> tuple[int, str, str]:
        try:
            code = cli.main(list(args))
        except SystemExit as done:  # argparse
            code = int(done.code or 0)
        out, err = capsys.readouterr()
        return code, out, err

    return run


def one_line(stderr: str) -> str:
    """The whole of stderr, which must be exactly one line (no traceback)."""
    assert stderr.endswith("\n") and stderr.count("\n") == 1, stderr
    return stderr.rstrip("\n")


def free_port() -> int:
    with closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Lines:
    """A process's output lines, read on a thread so that each wait has a deadline."""

    def __init__(self, stream: object) -> None:
        self._lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream: object) -> None:
        for line in stream:  # type: ignore[attr-defined]
            self._lines.put(line)
        self._lines.put("")  # end of output

    def next(self, timeout: float = 60.0) -> str:
        return self._lines.get(timeout=timeout)


FREE_PORTS = ["--grpc-port", "0", "--http-port", "0", "--inbound-port", "0", "--lmtp-port", "0"]


@contextmanager
def first_server(env: dict[str, str]) -> Iterator[dict[str, int]]:
    """`mailpool serve` on free ports (with LMTP): its ports by protocol."""
    process = subprocess.Popen(
        [sys.executable, "-m", "mailpool_server", "serve", *FREE_PORTS],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        lines = Lines(process.stdout)
        ports: dict[str, int] = {}
        while not (line := lines.next()).startswith("mailpool: dispatching"):
            match = re.fullmatch(r"mailpool: (\w+) listening on 127\.0\.0\.1:(\d+)\n", line)
            assert match, f"unexpected output {line!r}"
            ports[match.group(1)] = int(match.group(2))
        assert set(ports) == {"gRPC", "HTTP", "SMTP", "LMTP"}
        yield ports
    finally:
        process.terminate()
        process.wait(timeout=30)
        assert process.stdout is not None
        process.stdout.close()


def assert_serving(ports: dict[str, int]) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{ports['gRPC']}") as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=10
        )
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    assert httpx.get(f"http://127.0.0.1:{ports['HTTP']}/openapi.json", timeout=10).is_success
    for protocol in ("SMTP", "LMTP"):
        with socket.create_connection(("127.0.0.1", ports[protocol]), timeout=10) as peer:
            assert peer.recv(100).startswith(b"220 ")


# -- a port in use -----------------------------------------------------------------------


@pytest.mark.slow  # one subprocess per command: a CLI end-to-end scenario
def test_a_second_serve_on_the_same_ports_says_which_flag_to_pass(tmp_path: Path) -> None:
    db = tmp_path / "serve.db"
    env = {**os.environ, "MAILPOOL_DATABASE_URL": f"sqlite:///{db}"}
    with first_server(env) as ports:
        for protocol, flag in (
            ("gRPC", "--grpc-port"),
            ("HTTP", "--http-port"),
            ("SMTP", "--inbound-port"),
            ("LMTP", "--lmtp-port"),
        ):
            args = list(FREE_PORTS)
            args[args.index(flag) + 1] = str(ports[protocol])
            started = time.monotonic()
            second = subprocess.run(
                [sys.executable, "-m", "mailpool_server", "serve", *args],
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert second.returncode == 2, second.stderr
            assert second.stdout == ""
            assert one_line(second.stderr) == (
                f"mailpool: port {ports[protocol]} is in use; pass {flag} N (0 = free port)"
            )
            assert time.monotonic() - started < 30
            assert_serving(ports)  # the first one is untouched


def test_the_default_ports_of_a_second_serve(tmp_path: Path) -> None:
    """What `mailpool serve` twice prints: the gRPC port, named by its default flag."""
    taken = socket.socket()
    with closing(taken):
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {
            **os.environ,
            "MAILPOOL_DATABASE_URL": f"sqlite:///{tmp_path / 'never.db'}",
            "MAILPOOL_GRPC_PORT": str(port),
        }
        second = subprocess.run(
            [sys.executable, "-m", "mailpool_server", "serve"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert second.returncode == 2
    assert one_line(second.stderr) == (
        f"mailpool: port {port} is in use; pass --grpc-port N (0 = free port)"
    )
    assert not (tmp_path / "never.db").exists()  # found before the database was touched


async def test_grpc_refuses_to_share_a_port_with_another_mailpool(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    """grpc's default SO_REUSEPORT let two servers share a port; the bind must fail even
    when the port is taken after the check (the check is skipped here)."""
    assert app.grpc is not None
    checks = iter([lambda *args: None])  # the first check is skipped, later ones run

    def check_later(listener: str, host: str, port: int) -> None:
        next(checks, check_free)(listener, host, port)

    monkeypatch.setattr(rpc_server, "check_free", check_later)
    with pytest.raises(PortInUse) as caught:
        await rpc_server.start_grpc(app.grpc_services, "127.0.0.1", app.grpc.port)
    assert (caught.value.listener, caught.value.port) == ("grpc", app.grpc.port)


async def test_a_failed_start_stops_what_had_started(settings: Settings) -> None:
    """gRPC up, then the HTTP port taken between the check and the bind: everything
    that started is stopped, and the database is let go."""
    taken = socket.socket()
    with closing(taken):
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        settings.http_port = taken.getsockname()[1]
        settings.inbound_port = 0
        settings.run_dispatcher = True
        app = await App.open(settings)
        with pytest.raises(PortInUse) as caught:
            await app.start()
    assert caught.value.listener == "http"
    assert (app.grpc, app.http, app.loops, app.pg_listener, app.listeners) == (
        None,
        None,
        None,
        None,
        {},
    )


def test_check_free_names_the_listener_and_port() -> None:
    with closing(socket.socket()) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(PortInUse) as caught:
            check_free("smtp", "127.0.0.1", port)
    assert (caught.value.listener, caught.value.port, str(caught.value)) == (
        "smtp",
        port,
        f"port {port} is in use",
    )
    check_free("smtp", "127.0.0.1", port)  # free again once closed


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["serve", "--grpc-port", "70000"], "argument --grpc-port: '70000' is not a port"),
        (["serve", "--http-port", "-1"], "argument --http-port: '-1' is not a port"),
        (["serve", "--inbound-port", "-2"], "argument --inbound-port: '-2' is not a port"),
        (["inbound", "--lmtp-port", "abc"], "argument --lmtp-port: 'abc' is not a port"),
        (["shim", "--grpc-target", "h:1", "--http-port", "65536"], "'65536' is not a port"),
        (
            ["admin", "mailbox", "add", "--identity", "a@b.c", "--email", "d@e.f", "--health", "x"],
            "argument --health: invalid int value: 'x'",
        ),
    ],
)
def test_bad_numbers_in_flags_are_one_line(mailpool: Run, args: list[str], message: str) -> None:
    code, out, err = mailpool(*args)
    assert code == 2 and out == ""
    line = one_line(err)
    assert line.startswith("mailpool ") and message in line and "--help" in line, line


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("MAILPOOL_GRPC_PORT", "abc", "MAILPOOL_GRPC_PORT='abc' is not a port"),
        ("MAILPOOL_HTTP_PORT", "99999", "MAILPOOL_HTTP_PORT='99999' is not a port"),
        ("MAILPOOL_INBOUND_PORT", "-7", "MAILPOOL_INBOUND_PORT='-7' is not a port, or -1 = off"),
        ("MAILPOOL_DB_POOL_SIZE", "0", "MAILPOOL_DB_POOL_SIZE='0' is not a whole number"),
        (
            "MAILPOOL_HEARTBEAT_S",
            "1.5",
            "MAILPOOL_HEARTBEAT_S='1.5' is not a whole number of seconds (1..3600)",
        ),
        ("MAILPOOL_LOG_LEVEL", "loud", "MAILPOOL_LOG_LEVEL='LOUD' is not one of DEBUG"),
    ],
)
def test_bad_environment_values_are_one_line(
    mailpool: Run, monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    monkeypatch.setenv(name, value)
    code, _, err = mailpool("admin", "key", "list", "--org", "acme")
    assert code == 2
    assert one_line(err).startswith(f"mailpool: {message}")


def test_the_heartbeat_period_is_an_operator_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MAILPOOL_HEARTBEAT_S", raising=False)
    assert Settings().heartbeat_s == 15.0
    monkeypatch.setenv("MAILPOOL_HEARTBEAT_S", "40")
    assert Settings().heartbeat_s == 40.0


# -- the database URL ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("/tmp/x.db", "--db /tmp/x.db is a path, not a URL (that file is sqlite:////tmp/x.db)"),
        ("mysql://u:pw@h/db", "--db mysql://u:***@h/db is a mysql URL"),
        ("garbage", "--db garbage is not a database URL"),
        ("postgresql+psycopg2://u@h/db", "--db postgresql+psycopg2://u@h/db asks for the psycopg2"),
        ("sqlite://", "--db sqlite:// names no file"),
        ("", "--db is empty"),
    ],
)
def test_a_db_that_is_not_a_usable_url(mailpool: Run, url: str, problem: str) -> None:
    code, out, err = mailpool("admin", "org", "create", "acme", "--db", url)
    assert code == 2 and out == ""
    line = one_line(err)
    assert line.startswith(f"mailpool: {problem}"), line
    assert line.endswith(f"; use {ACCEPTED_URLS}"), line
    assert "pw" not in line


def test_the_environment_url_is_named_as_such(
    mailpool: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAILPOOL_DATABASE_URL", "postgres//nope")
    code, _, err = mailpool("admin", "key", "list", "--org", "acme")
    assert code == 2
    assert one_line(err).startswith("mailpool: MAILPOOL_DATABASE_URL postgres//nope is not a")


def test_postgres_urls_without_the_driver_mean_asyncpg() -> None:
    for given in ("postgres://u:p@h:5432/db", "postgresql://u:p@h:5432/db"):
        assert database_url(given) == "postgresql+asyncpg://u:p@h:5432/db"
    assert database_url("sqlite+aiosqlite:///a.db") == "sqlite+aiosqlite:///a.db"


def test_a_postgres_server_that_refuses_the_connection(mailpool: Run) -> None:
    port = free_port()  # nothing listens there
    code, _, err = mailpool(
        "admin", "org", "create", "acme", "--db", f"postgresql://u:pw@127.0.0.1:{port}/db"
    )
    assert code == 2
    line = one_line(err)
    assert line.startswith(
        f"mailpool: cannot connect to PostgreSQL at 127.0.0.1:{port} (connection refused"
    ), line
    assert "pw" not in line


@pytest.mark.skipif(POSTGRES is None, reason="needs MAILPOOL_TEST_POSTGRES")
def test_a_postgres_database_that_does_not_exist(mailpool: Run) -> None:
    assert POSTGRES is not None
    url = POSTGRES.rsplit("/", 1)[0] + "/no_such_database"
    code, _, err = mailpool("admin", "org", "create", "acme", "--db", url)
    assert code == 2
    assert 'database "no_such_database" does not exist' in one_line(err)


def test_a_sqlite_file_whose_folder_cannot_be_made(mailpool: Run, tmp_path: Path) -> None:
    (tmp_path / "plain-file").write_text("")
    url = f"sqlite:///{tmp_path / 'plain-file' / 'sub' / 'x.db'}"
    code, _, err = mailpool("admin", "org", "create", "acme", "--db", url)
    assert code == 2
    assert one_line(err).startswith(
        f"mailpool: cannot create the folder {tmp_path / 'plain-file' / 'sub'} for the SQLite file"
    )


def test_a_file_that_is_not_sqlite(mailpool: Run, tmp_path: Path) -> None:
    (tmp_path / "notes.db").write_text("not a database, just text " * 10)
    code, _, err = mailpool(
        "admin", "org", "create", "acme", "--db", f"sqlite:///{tmp_path / 'notes.db'}"
    )
    assert code == 2
    assert "(file is not a database)" in one_line(err)


# -- admin commands ----------------------------------------------------------------------


def test_revoke_takes_the_whole_key_and_says_when_it_is_already_revoked(mailpool: Run) -> None:
    assert mailpool("admin", "org", "create", "acme")[0] == 0
    code, key, _ = mailpool("admin", "key", "create", "--org", "acme")
    key = key.strip()
    other = mailpool("admin", "key", "create", "--org", "acme")[1].strip()
    assert mailpool("admin", "key", "revoke", "--org", "acme", key) == (
        0,
        f"revoked {key[:16]}…\n",
        "",
    )
    listing = mailpool("admin", "key", "list", "--org", "acme")[1]
    assert f"{key[:16]}…" in listing and f"{other[:16]}…" in listing
    assert listing.count("revoked") == 1
    for given in (key, key[:16], key[:16] + "…"):
        code, _, err = mailpool("admin", "key", "revoke", "--org", "acme", given)
        assert code == 1
        assert one_line(err) == f"mailpool: key {key[:16]}… is already revoked"
    # A whole key is matched by its hash, never by its prefix.
    forged = other[:16] + "0" * 32
    code, _, err = mailpool("admin", "key", "revoke", "--org", "acme", forged)
    assert code == 1 and one_line(err) == f"mailpool: {other[:16]}… is not a key of 'acme'"
    assert mailpool("admin", "key", "list", "--org", "acme")[1].count("revoked") == 1


def test_revoke_refuses_a_key_of_another_org(mailpool: Run) -> None:
    mailpool("admin", "org", "create", "acme")
    mailpool("admin", "org", "create", "globex")
    key = mailpool("admin", "key", "create", "--org", "globex")[1].strip()
    code, _, err = mailpool("admin", "key", "revoke", "--org", "acme", key)
    assert code == 1 and "is not a key of 'acme'" in one_line(err)
    assert "active" in mailpool("admin", "key", "list", "--org", "globex")[1]


def test_org_names_are_unique_regardless_of_case(mailpool: Run) -> None:
    assert mailpool("admin", "org", "create", "acme")[0] == 0
    code, _, err = mailpool("admin", "org", "create", "Acme")
    assert code == 1 and one_line(err) == "mailpool: an org named 'acme' exists already"
    code, key, _ = mailpool("admin", "key", "create", "--org", "ACME")
    assert code == 0 and key.startswith("sk_live_")
    assert mailpool("admin", "key", "list", "--org", "AcMe")[1].startswith(key[:16])


async def test_org_lookups_ignore_case_in_the_store(settings: Settings) -> None:
    app = await App.open(settings)
    try:
        await app.admin.create_org("Globex")
        key = await app.admin.create_key("GLOBEX")
        assert [k.prefix for k in await app.admin.list_keys("globex")] == [key[:16]]
    finally:
        await app.database.dispose()


async def test_orgs_differing_only_in_case_stop_the_migration(
    empty_database_url: str, backend: str
) -> None:
    url = empty_database_url
    """0002 adds the case-blind unique index; clashing names already stored are refused
    with their names and ids, and the schema stays where it was."""
    rows = (
        "INSERT INTO orgs (id, name, created_at) VALUES ('org_1', 'Acme', 1), ('org_2', 'acme', 2)"
    )
    if backend == "sqlite":
        engine = create_engine(url)
        with engine.begin() as conn:
            upgrade_on(conn, "0001")
            conn.execute(text(rows))
        engine.dispose()
    else:
        async_engine = make_engine(url)
        await upgrade(async_engine, "0001")
        async with async_engine.begin() as aconn:
            await aconn.execute(text(rows))
        await async_engine.dispose()
    with pytest.raises(SchemaRefused) as caught:
        await App.open(Settings(database_url=url))
    message = str(caught.value)
    assert "\n" not in message
    assert "'Acme' (org_1), 'acme' (org_2)" in message and "rename" in message
    assert await schema_version(url, backend) == "0001"  # nothing was changed


async def schema_version(url: str, backend: str) -> str | None:
    query = text("SELECT version_num FROM alembic_version")
    if backend == "sqlite":
        engine = create_engine(url)
        with engine.connect() as conn:
            version = conn.execute(query).scalar()
        engine.dispose()
    else:
        async_engine = make_engine(url)
        async with async_engine.connect() as aconn:
            version = (await aconn.execute(query)).scalar()
        await async_engine.dispose()
    return None if version is None else str(version)


def _identity(mailpool: Run, *extra: str) -> tuple[int, str, str]:
    return mailpool(
        "admin",
        "identity",
        "create",
        "--org",
        "acme",
        "--handle",
        "a@acme.test",
        "--tier",
        "starter",
        *extra,
    )


@pytest.mark.parametrize("stage", ["-1", "6", "40"])
def test_warmup_stages_outside_the_policy_table_are_refused(mailpool: Run, stage: str) -> None:
    mailpool("admin", "org", "create", "acme")
    code, _, err = _identity(mailpool, "--warmup-stage", stage)
    assert code == 1 and one_line(err) == "mailpool: --warmup-stage is 0..5"
    assert _identity(mailpool, "--warmup-stage", "5")[0] == 0
    code, _, err = mailpool(
        "admin",
        "mailbox",
        "add",
        "--identity",
        "a@acme.test",
        "--email",
        "x@acme.test",
        "--warmup-stage",
        stage,
    )
    assert code == 1 and one_line(err) == "mailpool: --warmup-stage is 0..5"


@pytest.mark.parametrize(
    ("smtp", "message"),
    [
        ("smtp://h:99999", "--smtp port '99999' is not a port number (1-65535)"),
        ("smtp://h:abc", "--smtp port 'abc' is not a port number (1-65535)"),
        ("smtp://h:0", "--smtp port '0' is not a port number (1-65535)"),
        (
            "smtp://h?tls=implicit",
            "--smtp tls='implicit' is not one of tls=starttls or tls=none "
            "(for implicit TLS, use smtps://)",
        ),
        ("smtp://h?tls=START", "--smtp tls='START' is not one of tls=starttls or tls=none"),
        ("smtps://h?tls=none", "--smtp smtps:// is implicit TLS and takes no tls="),
        ("smtp://u:hunter2@h?tsl=none", "--smtp takes no 'tsl' option"),
        ("http://u:hunter2@h", "--smtp must look like smtp://user:secret@host:587?tls="),
    ],
)
def test_smtp_mistakes_name_the_accepted_values(mailpool: Run, smtp: str, message: str) -> None:
    mailpool("admin", "org", "create", "acme")
    _identity(mailpool)
    code, _, err = mailpool(
        "admin",
        "mailbox",
        "add",
        "--identity",
        "a@acme.test",
        "--email",
        "x@acme.test",
        "--smtp",
        smtp,
    )
    assert code == 1
    line = one_line(err)
    assert line.startswith(f"mailpool: {message}"), line
    assert "hunter2" not in line and "SmtpTls" not in line


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["admin"],
        ["admin", "key"],
        ["admin", "identity"],
        ["admin", "mailbox"],
        ["admin", "org"],
    ],
)
def test_a_command_without_its_subcommand_prints_its_help(mailpool: Run, args: list[str]) -> None:
    code, out, err = mailpool(*args)
    assert code == 2 and out == ""
    assert err.startswith(f"usage: {' '.join(['mailpool', *args])} [-h]"), err
    assert "COMMAND" in err and "Traceback" not in err
