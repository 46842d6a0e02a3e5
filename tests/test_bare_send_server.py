"""bench/bare_send_server.py, the bench's bare-sqlite3 baseline, as a real process: keyed
sends from concurrent clients each write their rows once, group-committed, and a key
sent again is answered from its stored response without a write."""

from __future__ import annotations

import base64
import os
import sqlite3
from contextlib import closing
from pathlib import Path

import grpc

from bench.harness import port_of, run_load, serve_env, started
from bench.loads import send_request
from bench.seed import Seeded, seed
from mailpool.v1 import send_pb2
from mailpool.v1 import send_service_pb2 as send_pb
from mailpool.v1 import send_service_pb2_grpc as send_grpc

ROOT = Path(__file__).parents[1]
SENDS, CLIENTS = 40, 8
TABLES = (
    "conversations",
    "messages",
    "timeline",
    "pending_sends",
    "contacts",
    "events",
    "idempotency_keys",
)


def counts(path: Path) -> dict[str, int]:
    """Rows per table, and the counters' sums, as committed in the file."""
    queries = {table: f"SELECT count(*) FROM {table}" for table in TABLES}
    queries["used"] = "SELECT total(used) FROM identity_usage"
    queries["sent"] = "SELECT total(sent) FROM mailbox_usage"
    queries["seqs"] = "SELECT total(last_seq) FROM identities"
    with closing(sqlite3.connect(path)) as db:
        return {name: int(db.execute(query).fetchone()[0]) for name, query in queries.items()}


async def seeded_database(tmp_path: Path) -> tuple[Path, Seeded, dict[str, str]]:
    """A seeded bench database with two identities, and the environment that serves it
    (this checkout's bench package importable)."""
    path = tmp_path / "bench.db"
    database = f"sqlite:///{path}"
    seeded = await seed(database, identities=2, backlog=0)
    env = serve_env(database) | {
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    }
    return path, seeded, env


async def test_keyed_sends_write_their_rows_once_and_replay(tmp_path: Path) -> None:
    path, seeded, env = await seeded_database(tmp_path)
    before = counts(path)
    async with started(["-m", "bench.bare_send_server"], env, ready_lines=1) as server:
        port = port_of(server.lines[0])
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = send_grpc.SendServiceStub(channel)
            responses: dict[int, send_pb.SendResponse] = {}

            async def send(n: int) -> None:
                responses[n] = await stub.Send(send_request(seeded, n))

            await run_load(send, SENDS, CLIENTS)
            after = counts(path)
            replayed = await stub.Send(send_request(seeded, 7))
            assert replayed == responses[7]
            assert counts(path) == after  # the replay wrote nothing

    for table in TABLES:
        assert after[table] == before[table] + SENDS, table
    assert after["used"] == after["sent"] == after["seqs"] == SENDS
    with closing(sqlite3.connect(path)) as db:
        # Every identity's log is gap-free up to its head seq.
        for identity_id, last_seq in db.execute("SELECT id, last_seq FROM identities"):
            seqs = db.execute(
                "SELECT seq FROM events WHERE identity_id = ? ORDER BY seq", (identity_id,)
            ).fetchall()
            assert [seq for (seq,) in seqs] == list(range(1, last_seq + 1))
        # Each key stored the response its send got, naming the rows written.
        stored = {
            key: send_pb.SendResponse.FromString(base64.b64decode(response))
            for key, response in db.execute("SELECT key, response FROM idempotency_keys")
        }
        assert stored == {f"bench-{n}": response for n, response in responses.items()}
        pending = dict(db.execute("SELECT id, conv_id FROM pending_sends").fetchall())
    for response in responses.values():
        assert (response.accepted, response.rejected) == (1, 0)
        [result] = response.results
        assert result.status == send_pb2.RECIPIENT_STATUS_QUEUED
        assert pending[result.pending_id] == result.conv_id


async def test_with_reads_it_checks_the_key_the_identity_and_the_recipient(
    tmp_path: Path,
) -> None:
    """--reads (the bench's floor) makes its reads for real: a key that is not stored,
    an identity suspended since start-up and a do-not-contact recipient are refused, and
    a refused send writes nothing."""
    path, seeded, env = await seeded_database(tmp_path)
    args = ["-m", "bench.bare_send_server", "--reads"]
    async with started(args, env, ready_lines=1) as server:
        port = port_of(server.lines[0])
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = send_grpc.SendServiceStub(channel)
            sent = await stub.Send(send_request(seeded, 0), metadata=seeded.metadata)
            assert sent.accepted == 1
            before = counts(path)

            async def refused(n: int, metadata: tuple[tuple[str, str], ...]) -> grpc.StatusCode:
                try:
                    await stub.Send(send_request(seeded, n), metadata=metadata)
                except grpc.aio.AioRpcError as error:
                    return error.code()
                raise AssertionError("the send was taken")

            wrong_key = (("authorization", "Bearer mp_live_not_a_stored_key"),)
            assert await refused(1, wrong_key) == grpc.StatusCode.UNAUTHENTICATED
            assert await refused(2, ()) == grpc.StatusCode.UNAUTHENTICATED
            with closing(sqlite3.connect(path)) as db, db:
                (org_id,) = db.execute("SELECT org_id FROM identities LIMIT 1").fetchone()
                db.execute(
                    "INSERT INTO do_not_contact (org_id, address, reason, created_at)"
                    " VALUES (?, ?, 'asked', 0)",
                    (org_id, send_request(seeded, 2).to[0]),
                )
                db.execute(
                    "UPDATE identities SET state = 'suspended' WHERE handle = ?",
                    (send_request(seeded, 3).identity,),
                )
            stopped = grpc.StatusCode.FAILED_PRECONDITION
            assert await refused(2, seeded.metadata) == stopped  # do-not-contact
            assert await refused(3, seeded.metadata) == stopped  # suspended
            assert counts(path) == before
            taken = await stub.Send(send_request(seeded, 4), metadata=seeded.metadata)
            assert taken.accepted == 1
    assert counts(path)["idempotency_keys"] == before["idempotency_keys"] + 1
