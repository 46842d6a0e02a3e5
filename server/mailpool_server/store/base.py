"""What every repository mixin works on: a unit of work's driver and its session."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar, TypeVarTuple, cast, overload

from sqlalchemy import Result, ScalarResult, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlalchemy.sql import Executable
from sqlalchemy.sql.selectable import TypedReturnsRows

from mailpool_server.store.driver import Driver

T = TypeVar("T")
Ts = TypeVarTuple("Ts")


class SessionPort(Protocol):
    """The part of an ORM session the repositories use: AsyncSession on PostgreSQL,
    InlineSession (a synchronous Session called in place) on SQLite."""

    def add(self, instance: object) -> None: ...
    @overload
    async def execute(
        self, statement: TypedReturnsRows[*Ts], params: Any = None
    ) -> Result[*Ts]: ...
    @overload
    async def execute(
        self, statement: Executable, params: Any = None
    ) -> Result[*tuple[Any, ...]]: ...
    @overload
    async def scalar(self, statement: TypedReturnsRows[T], params: Any = None) -> T | None: ...
    @overload
    async def scalar(self, statement: Executable, params: Any = None) -> Any: ...
    @overload
    async def scalars(
        self, statement: TypedReturnsRows[T], params: Any = None
    ) -> ScalarResult[T]: ...
    @overload
    async def scalars(self, statement: Executable, params: Any = None) -> ScalarResult[Any]: ...
    async def get(
        self, entity: type[T], ident: Any, *, populate_existing: bool = False
    ) -> T | None: ...
    async def flush(self) -> None: ...


class InlineSession:
    """A synchronous Session behind the async SessionPort. SQLite is a library in this
    process: a statement is a few microseconds of CPU, cheaper to run in place than
    to hand to a thread and wait for (the commit, which waits on the disk, is the
    exception: see sqlite_db.py)."""

    __slots__ = ("_session",)

    def __init__(self, session: Session) -> None:
        self._session = session

    @property
    def inner(self) -> Session:
        return self._session

    def add(self, instance: object) -> None:
        self._session.add(instance)

    async def execute(self, statement: Executable, params: Any = None) -> Result[*tuple[Any, ...]]:
        return self._session.execute(statement, params)

    async def scalar(self, statement: Executable, params: Any = None) -> Any:
        return self._session.scalar(statement, params)

    async def scalars(self, statement: Executable, params: Any = None) -> ScalarResult[Any]:
        return self._session.scalars(statement, params)

    async def get(
        self, entity: type[T], ident: Any, *, populate_existing: bool = False
    ) -> T | None:
        return self._session.get(entity, ident, populate_existing=populate_existing)

    async def flush(self) -> None:
        self._session.flush()


class Unit:
    """One unit of work's handles on its connection: the driver, and an ORM session
    on the same connection and transaction, made only when a cold path asks for it
    (a send never does). The database that opened the unit calls `close` when the
    block ends, before it commits or rolls back."""

    __slots__ = ("_close", "_make_session", "_session", "driver")

    def __init__(
        self,
        driver: Driver,
        make_session: Callable[[], SessionPort],
        close: Callable[[SessionPort, bool], Awaitable[None]],
    ) -> None:
        self.driver = driver
        self._make_session = make_session
        self._close = close
        self._session: SessionPort | None = None

    def session(self) -> SessionPort:
        if self._session is None:
            self._session = self._make_session()
        return self._session

    async def close(self, *, ok: bool) -> None:
        """Flush the session's work (ok) or drop it, and let the connection go."""
        if self._session is not None:
            session, self._session = self._session, None
            await self._close(session, ok)


def no_session() -> SessionPort:
    raise TypeError("a lookup runs the driver's statements only")


def table(row_class: type[Any]) -> Table:
    """The Core table of a mapped class (statements that skip the ORM's per-row
    bookkeeping)."""
    return cast(Table, row_class.__table__)


class TxBase:
    """A unit of work's connection, two ways: `driver` for the hot path's statements
    (driver.py), `session` (made on first use) for everything else."""

    __slots__ = ("_unit", "dialect", "driver")

    def __init__(self, unit: Unit, *, dialect: str) -> None:
        self._unit = unit
        self.driver = unit.driver
        self.dialect = dialect

    @property
    def session(self) -> SessionPort:
        return self._unit.session()

    def insert(self, table: Any) -> Any:
        """The dialect's INSERT, which knows ON CONFLICT (SQLite and PostgreSQL alike)."""
        if self.dialect == "postgresql":
            return postgresql.insert(table)
        return sqlite.insert(table)
