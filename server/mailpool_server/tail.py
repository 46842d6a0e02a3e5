"""`mailpool tail`: follow an identity's (or the whole org's) events in the terminal.

Built on the client library (mailpool_client), so it needs no database: it reconnects on
its own after a restart or a dropped connection, resumes from the last seq it printed and
never prints an event twice. One line per event, or with --json the HTTP contract's event
envelope (the same JSON the events endpoint and webhooks carry), one per line. Notes about
the stream (caught up, reconnecting) go to stderr, so stdout stays one event per line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from typing import Any

from mailpool.v1 import event_pb2
from mailpool_client import (
    CaughtUp,
    Disconnected,
    EventItem,
    MailpoolClient,
    MailpoolError,
    StreamItem,
)
from mailpool_client.events import EventStream
from mailpool_server.rest.event_summary import summary
from mailpool_server.rest.render import event as render_event


def _since(value: str) -> tuple[str | None, int]:
    handle, _, seq = value.rpartition("=")
    try:
        number = int(seq)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not N or HANDLE=N") from None
    if number < 0:
        raise argparse.ArgumentTypeError(f"{value!r}: a seq is 0 or more")
    return (handle or None), number


def add_tail_command(commands: Any) -> None:
    """Register `mailpool tail` on the CLI's subcommands (run by `run_tail`)."""
    tail: argparse.ArgumentParser = commands.add_parser(
        "tail",
        help="follow events live from a gRPC server (no database needed)",
        description=__doc__,
    )
    who = tail.add_mutually_exclusive_group(required=True)
    who.add_argument("--identity", metavar="HANDLE", help="follow this identity")
    who.add_argument("--org", action="store_true", help="follow every identity of the key's org")
    tail.add_argument(
        "--since",
        type=_since,
        action="append",
        default=[],
        metavar="N|HANDLE=N",
        help="print events after this seq (--identity: N; --org: HANDLE=N, repeatable)",
    )
    tail.add_argument("--json", action="store_true", help="print each event's JSON envelope")
    tail.add_argument(
        "--target",
        help="host:port of the gRPC server "
        "(default $MAILPOOL_GRPC_HOST:$MAILPOOL_GRPC_PORT, else 127.0.0.1:50051)",
    )
    tail.add_argument("--key", help="API key (default $MAILPOOL_KEY)")
    tail.add_argument("--tls", action="store_true", help="use TLS with the system's roots")
    tail.set_defaults(run=None)


def line(event: event_pb2.Event, *, org: bool) -> str:
    """One human-readable line: [handle] seq, time, type, conversation, summary."""
    envelope = render_event(event)
    columns = [
        f"{event.seq:>6}",
        envelope["createdAtIso"],
        f"{event.type:<16}",
        event.conv_id or "-",
        summary(envelope),
    ]
    if org:
        columns.insert(0, event.identity)
    return "  ".join(columns)


def _note(text: str) -> None:
    print(f"mailpool tail: {text}", file=sys.stderr, flush=True)


def _heads(heads: dict[str, int]) -> str:
    return ", ".join(f"{handle} at {seq}" for handle, seq in sorted(heads.items())) or "nothing"


async def _follow(stream: EventStream[StreamItem], *, as_json: bool, org: bool) -> None:
    async with stream:
        async for item in stream:
            if isinstance(item, EventItem):
                if as_json:
                    text = json.dumps(render_event(item.event), ensure_ascii=False)
                else:
                    text = line(item.event, org=org)
                print(text, flush=True)
            elif isinstance(item, CaughtUp):
                _note(f"caught up ({_heads(item.heads)}); following")
            elif isinstance(item, Disconnected):
                _note(f"{item.error}; reconnecting in {item.retry_in:.1f} s")


async def _tail(args: argparse.Namespace, key: str, target: str) -> int:
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    async with MailpoolClient(target, key, tls=args.tls) as client:
        if args.org:
            stream = client.org_events(dict(args.since), include_markers=True)
        else:
            since = args.since[-1][1] if args.since else 0
            stream = client.events(args.identity, since, include_markers=True)
        try:
            await _follow(stream, as_json=args.json, org=args.org)
        except asyncio.CancelledError:
            return 0  # SIGTERM / Ctrl-C: a normal way to stop
        except MailpoolError as error:
            _note(str(error))
            return 1
    return 0


def run_tail(args: argparse.Namespace) -> int:
    """`mailpool tail`: no App, no database; only a gRPC channel."""
    key = args.key or os.environ.get("MAILPOOL_KEY", "")
    if not key:
        _note("no API key: pass --key or set MAILPOOL_KEY")
        return 2
    if args.org and any(handle is None for handle, _ in args.since):
        _note("with --org, give --since as HANDLE=N")
        return 2
    if args.identity and any(handle is not None for handle, _ in args.since):
        _note("with --identity, give --since as N")
        return 2
    host = os.environ.get("MAILPOOL_GRPC_HOST", "127.0.0.1")
    target = args.target or f"{host}:{os.environ.get('MAILPOOL_GRPC_PORT', '50051')}"
    try:
        return asyncio.run(_tail(args, key, target))
    except BrokenPipeError:
        # The reader went away (`mailpool tail | head`): stop quietly, and keep Python
        # from complaining about stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
