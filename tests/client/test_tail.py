"""`mailpool tail` as operators run it: a subprocess against a real server."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from asyncio.subprocess import Process
from collections.abc import AsyncIterator, Awaitable, Mapping
from typing import Any, Protocol

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from mailpool.v1 import conversation_pb2, event_pb2, mailbox_pb2, send_pb2
from mailpool_client import MailpoolClient
from mailpool_server.app import App
from mailpool_server.rest.render import event as render_event
from mailpool_server.tail import line
from tests.client.conftest import grpc_target
from tests.support import Tenant

WAIT_S = 30.0


def tail_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "MAILPOOL_KEY"}
    return {**env, **extra}


class TailStarter(Protocol):
    def __call__(self, *args: str, env: dict[str, str]) -> Awaitable[Process]: ...


@pytest.fixture
async def run_tail() -> AsyncIterator[TailStarter]:
    """Starts `mailpool tail …`; every process started is SIGTERMed and reaped at the end."""
    processes: list[Process] = []

    async def start(*args: str, env: dict[str, str]) -> Process:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "mailpool_server",
            "tail",
            *args,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        processes.append(process)
        return process

    yield start
    for process in processes:
        if process.returncode is None:
            process.terminate()
        async with asyncio.timeout(WAIT_S):
            await process.wait()


async def read_line(process: Process) -> str:
    assert process.stdout is not None
    async with asyncio.timeout(WAIT_S):
        text = (await process.stdout.readline()).decode()
    assert text, "tail ended early"
    return text


async def finish(process: Process) -> tuple[int, str]:
    """SIGTERM it; its exit code and everything it wrote to stderr."""
    assert process.stderr is not None
    process.terminate()
    async with asyncio.timeout(WAIT_S):
        code = await process.wait()
        return code, (await process.stderr.read()).decode()


@pytest.mark.slow  # subprocesses
async def test_tail_json_prints_each_event_as_the_contract_envelope(
    app: App, client: MailpoolClient, tenant: Tenant, run_tail: TailStarter
) -> None:
    h = tenant.handle
    await client.send(h, to=["a@example.com", "b@example.com"], subject="Hi", text="x")
    tail = await run_tail(
        "--identity",
        h,
        "--json",
        "--target",
        grpc_target(app),
        env=tail_env(MAILPOOL_KEY=tenant.key),
    )
    printed = [json.loads(await read_line(tail)) for _ in range(2)]
    await client.send(h, to="c@example.com", subject="Live", text="y")  # while it follows
    printed.append(json.loads(await read_line(tail)))

    expected = [render_event(e) for e in (await client.list_events(h)).events]
    assert printed == expected
    assert [p["seq"] for p in printed] == [1, 2, 3]
    assert printed[2]["data"]["recipient"] == "c@example.com"
    code, stderr = await finish(tail)
    assert code == 0
    assert f"caught up ({h} at 2); following" in stderr


@pytest.mark.slow  # subprocesses
async def test_tail_org_prints_one_line_per_event_from_a_position(
    app: App, client: MailpoolClient, tenant: Tenant, run_tail: TailStarter
) -> None:
    h = tenant.handle
    sent = await client.send(h, to=["a@example.com", "b@example.com"], subject="Hi", text="x")
    tail = await run_tail(
        "--org",
        "--since",
        f"{h}=1",
        "--key",
        tenant.key,
        "--target",
        grpc_target(app),
        env=tail_env(),
    )
    columns = (await read_line(tail)).split()
    result = sent.response.results[1]
    data: Mapping[str, Any] = render_event((await client.list_events(h, since=1)).events[0])["data"]
    assert columns[:2] == [h, "2"]
    assert columns[3:] == [
        "email.queued",
        result.conv_id,
        "to",
        "b@example.com",
        "(cold_first_contact)",
        "via",
        f"{result.account.email},",
        "dispatch",
        data["dispatchAtIso"],
    ]
    code, _ = await finish(tail)
    assert code == 0


@pytest.mark.slow  # subprocesses
async def test_tail_fails_in_one_line(app: App, tenant: Tenant, run_tail: TailStarter) -> None:
    target = grpc_target(app)
    wrong = await run_tail(
        "--identity", tenant.handle, "--target", target, env=tail_env(MAILPOOL_KEY="sk_live_nope")
    )
    keyless = await run_tail("--org", "--target", target, env=tail_env())
    mixed = await run_tail(
        "--identity", tenant.handle, "--since", "a@b=1", "--key", "sk_x", env=tail_env()
    )
    outcomes = []
    for process in (wrong, keyless, mixed):
        assert process.stderr is not None
        async with asyncio.timeout(WAIT_S):
            outcomes.append((await process.wait(), (await process.stderr.read()).decode()))
    assert outcomes == [
        (1, "mailpool tail: UNAUTHENTICATED API_KEY_INVALID: invalid api key\n"),
        (2, "mailpool tail: no API key: pass --key or set MAILPOOL_KEY\n"),
        (2, "mailpool tail: with --identity, give --since as N\n"),
    ]


def _at(ms: int) -> Timestamp:
    stamp = Timestamp()
    stamp.FromMilliseconds(ms)
    return stamp


def test_every_event_type_has_a_summary() -> None:
    box = mailbox_pb2.MailboxRef(id="acc_1", email="alice.chen@tryacme.com")
    message = conversation_pb2.Message(
        from_address="morgan@northwind.example", to=["alice.chen@tryacme.com"], subject="Re: Hi"
    )
    payloads = {
        "email_queued": event_pb2.EmailQueued(
            recipient="m@x.example", send_class=send_pb2.SEND_CLASS_COLD_FIRST_CONTACT, account=box
        ),
        "email_sent": event_pb2.EmailSent(message=message, account=box),
        "email_cancelled": event_pb2.EmailCancelled(
            recipient="m@x.example", reason=event_pb2.CANCEL_REASON_DO_NOT_CONTACT
        ),
        "email_send_failed_permanently": event_pb2.EmailSendFailedPermanently(
            recipient="m@x.example", error="550 5.1.1\n user unknown", attempts=6
        ),
        "email_received": event_pb2.EmailReceived(message=message),
        "email_replied": event_pb2.EmailReplied(message=message),
        "email_bounced": event_pb2.EmailBounced(
            recipient="m@x.example", kind=event_pb2.BOUNCE_KIND_HARD, status_code="5.1.1"
        ),
        "email_no_reply": event_pb2.EmailNoReply(waited_ms=4 * 3600 * 1000),
        "mailbox_replaced": event_pb2.MailboxReplaced(old_account=box, repinned=3),
    }
    expected = {
        "email_queued": "to m@x.example (cold_first_contact) via alice.chen@tryacme.com",
        "email_sent": "morgan@northwind.example → alice.chen@tryacme.com: 'Re: Hi'",
        "email_cancelled": "m@x.example: do_not_contact",
        "email_send_failed_permanently": "m@x.example: 550 5.1.1 user unknown (6 attempts)",
        "email_received": "from morgan@northwind.example: 'Re: Hi'",
        "email_replied": "from morgan@northwind.example: 'Re: Hi'",
        "email_bounced": "m@x.example: hard 5.1.1",
        "email_no_reply": "no reply after 4h",
        "mailbox_replaced": "alice.chen@tryacme.com → no healthy peer, 3 recipients repinned",
    }
    oneof = event_pb2.Event.DESCRIPTOR.oneofs_by_name["payload"]
    assert set(payloads) == {f.name for f in oneof.fields}
    for name, payload in payloads.items():
        event = event_pb2.Event(
            seq=7, type=name.replace("_", ".", 1), identity="a@x", create_time=_at(0)
        )
        getattr(event, name).CopyFrom(payload)
        text = line(event, org=True)
        assert text.startswith("a@x       7  1970-01-01T00:00:00.000Z  "), text
        assert expected[name] in text, text
