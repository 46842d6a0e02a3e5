"""Start-up mistakes an operator can fix, and the checks that find them before anything
changes: a port that is taken, a database URL that is not one, a database that does
not answer. Each is a StartupError whose text is one line saying what to do; the CLI
prints it instead of a traceback (DESIGN.md §4)."""

from __future__ import annotations

import errno
import os
import re
import socket
import sqlite3
from contextlib import suppress
from pathlib import Path

import asyncpg
from sqlalchemy import URL, make_url
from sqlalchemy.exc import ArgumentError

ACCEPTED_URLS = "sqlite:///path/to/file.db or postgresql+asyncpg://user:password@host:5432/dbname"
CONNECT_TIMEOUT_S = 10.0


class StartupError(Exception):
    """Something the operator set up wrong; str() is the whole message, one line."""


class CannotListen(StartupError):
    """A listener could not bind host:port. `listener` is grpc, http, smtp or lmtp."""

    def __init__(
        self, listener: str, host: str, port: int, reason: str, code: int | None = None
    ) -> None:
        super().__init__(listener, host, port, reason)
        self.listener = listener
        self.host = host
        self.port = port
        self.reason = reason
        self.code = code  # errno, or getaddrinfo's error for a host that does not resolve

    @property
    def port_refused(self) -> bool:
        """The port is the problem (taken, or privileged), not the host."""
        return self.code in (errno.EADDRINUSE, errno.EACCES, errno.EPERM)

    def __str__(self) -> str:
        return f"cannot listen on {self.host}:{self.port} ({self.reason})"


class PortInUse(CannotListen):
    def __init__(self, listener: str, host: str, port: int) -> None:
        super().__init__(listener, host, port, "address already in use", errno.EADDRINUSE)

    def __str__(self) -> str:
        return f"port {self.port} is in use"


class DatabaseUnusable(StartupError):
    """The database URL is malformed, names another database, or does not answer."""


class BadSetting(StartupError):
    """An environment variable with a value that cannot work."""


class SchemaRefused(StartupError):
    """A migration found data it cannot carry over without the operator's decision."""


def listen_error(listener: str, host: str, port: int, error: OSError) -> CannotListen:
    if error.errno == errno.EADDRINUSE:
        return PortInUse(listener, host, port)
    if isinstance(error, socket.gaierror) or not error.errno:
        reason = error.strerror or str(error) or type(error).__name__
    else:  # asyncio's own text wraps strerror in a long sentence
        reason = os.strerror(error.errno)
    return CannotListen(listener, host, port, reason[:1].lower() + reason[1:], error.errno)


def bind(listener: str, host: str, port: int) -> socket.socket:
    """A TCP socket bound to host:port (not listening yet), as asyncio and uvicorn bind
    theirs: SO_REUSEADDR (a restart does not wait for TIME_WAIT) and no SO_REUSEPORT
    (a second server on the same port is refused, never silently shares it)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host.strip("[]") or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
    except OSError as error:
        raise listen_error(listener, host, port, error) from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as error:
        sock.close()
        raise listen_error(listener, host, port, error) from None
    return sock


def check_free(listener: str, host: str, port: int) -> None:
    """Raise CannotListen now if host:port cannot be bound (with port 0: if the host is
    not an address of this machine). A socket that was bound and never listened leaves
    no TIME_WAIT: the real server can bind right after."""
    bind(listener, host, port).close()


def _shown(url: str) -> str:
    """The URL as an error message may echo it: without its password, cut short."""
    try:
        parsed = make_url(url)
        text = parsed.render_as_string(hide_password=True) if parsed.password else url
    except (ArgumentError, ValueError):
        text = re.sub(r"(//[^/:@]*):[^@/]*@", r"\1:***@", url)
    return text if len(text) <= 80 else text[:77] + "..."


def database_url(url: str, source: str = "the database URL") -> str:
    """The URL the server uses for `url`, or DatabaseUnusable naming what is wrong and
    the accepted forms. postgresql:// and postgres:// mean PostgreSQL through asyncpg
    (the only driver mailpool uses) and are rewritten to postgresql+asyncpg://;
    sqlite+aiosqlite:// (older settings) names the same file as sqlite://."""

    def refuse(problem: str) -> DatabaseUnusable:
        return DatabaseUnusable(f"{source} {_shown(url)} {problem}; use {ACCEPTED_URLS}")

    if not url.strip():
        raise DatabaseUnusable(f"{source} is empty; use {ACCEPTED_URLS}")
    try:
        parsed = make_url(url.strip())
    except (ArgumentError, ValueError):
        if "://" not in url and url.strip().endswith((".db", ".sqlite", ".sqlite3")):
            path = Path(url.strip()).absolute()
            raise refuse(f"is a path, not a URL (that file is sqlite:///{path})") from None
        raise refuse("is not a database URL") from None
    backend, _, driver = parsed.drivername.partition("+")
    if backend == "sqlite":
        if driver not in ("", "pysqlite", "aiosqlite"):
            raise refuse(f"asks for the {driver} driver")
        if parsed.database == ":memory:":
            raise refuse("is in memory (each connection would see another database)")
        if parsed.host or not parsed.database:
            raise refuse("names no file (three slashes, then the path)")
        return url.strip()
    if backend in ("postgresql", "postgres"):
        if driver not in ("", "asyncpg"):
            raise refuse(f"asks for the {driver} driver (mailpool uses asyncpg)")
        return "postgresql+asyncpg://" + url.strip().split("://", 1)[1]
    raise refuse(f"is a {backend} URL (mailpool stores in SQLite or PostgreSQL)")


async def check_database(url: str) -> None:
    """Connect once to a database_url() result, before migrating: DatabaseUnusable
    saying why when the SQLite file cannot be created or opened, or PostgreSQL does not
    let us in. Creating a missing SQLite file (and its folder) is what the server would
    do next anyway."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        _check_sqlite(Path(str(parsed.database)))
    else:
        await _check_postgres(parsed)


def _check_sqlite(path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        reason = (error.strerror or str(error)).lower()
        if isinstance(error, (FileExistsError, NotADirectoryError)):
            reason = "a file is in the way"
        raise DatabaseUnusable(
            f"cannot create the folder {path.parent} for the SQLite file ({reason}); "
            f"use {ACCEPTED_URLS}"
        ) from None
    try:
        connection = sqlite3.connect(path)
        try:
            connection.execute("PRAGMA schema_version")  # reads the header: is it SQLite?
        finally:
            connection.close()
    except sqlite3.Error as error:
        raise DatabaseUnusable(
            f"cannot open the SQLite file {path} ({error}); use {ACCEPTED_URLS}"
        ) from None


async def _check_postgres(url: URL) -> None:
    where = f"{url.host or 'localhost'}:{url.port or 5432}"
    dsn = "postgresql://" + url.render_as_string(hide_password=False).split("://", 1)[1]
    try:
        connection = await asyncpg.connect(dsn, timeout=CONNECT_TIMEOUT_S)
    except TimeoutError:
        reason = f"no answer within {CONNECT_TIMEOUT_S:.0f} s"
    except ConnectionRefusedError:
        reason = "connection refused: is PostgreSQL running there?"
    except OSError as error:  # an unknown host, an unreachable network
        reason = (error.strerror or str(error)).lower()
    except (asyncpg.PostgresError, asyncpg.InterfaceError) as error:
        # A wrong password, an unknown role or database: the server's own words.
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
    else:
        with suppress(Exception):
            await connection.close()
        return
    raise DatabaseUnusable(
        f"cannot connect to PostgreSQL at {where} ({reason}); check the URL: {ACCEPTED_URLS}"
    )
