"""The `mailpool` command: serve, admin, demo."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from mailpool_server import event_loop, heap, logs
from mailpool_server.app import App, listen_addresses, load_tls
from mailpool_server.config import Settings
from mailpool_server.rest.server import start_http
from mailpool_server.service.clock import iso_ms
from mailpool_server.service.errors import AdminError
from mailpool_server.service.models import IdentityState, IdentityToday
from mailpool_server.service.policy import MAX_WARMUP_STAGE, Tier
from mailpool_server.service.webhook_admin import WebhookAdmin, WebhookView
from mailpool_server.startup import (
    CannotListen,
    PortInUse,
    StartupError,
    check_free,
    database_url,
)
from mailpool_server.tail import add_tail_command, run_tail
from mailpool_server.tls import ClientTls

Command = Callable[[App, argparse.Namespace], Awaitable[int]]

# The flag that moves each listener, for the one line a taken port gets.
PORT_FLAGS = {
    "grpc": "--grpc-port",
    "http": "--http-port",
    "smtp": "--inbound-port",
    "lmtp": "--lmtp-port",
    "metrics": "--metrics-port",
}


def identity_json(today: IdentityToday) -> dict[str, Any]:
    i = today.identity
    return {
        "handle": i.handle,
        "tier": i.tier.value,
        "state": i.state.value,
        "dailyCap": today.daily_cap,
        "usedToday": today.used_today,
        "remainingToday": today.remaining_today,
        "resetAtIso": iso_ms(today.reset_at),
        "headSeq": i.last_seq,
        "mailboxes": [
            {
                "id": m.mailbox.id,
                "email": m.mailbox.email,
                "transport": m.mailbox.transport.value,
                "warmupStage": m.mailbox.warmup_stage,
                "health": m.mailbox.health,
                "dailyCap": m.mailbox.daily_cap,
                "sentToday": m.sent_today,
            }
            for m in today.mailboxes
        ],
    }


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2))


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop


def _announce(app: App) -> None:
    settings = app.settings
    if app.grpc is not None:
        print(f"mailpool: gRPC listening on {settings.grpc_host}:{app.grpc.port}", flush=True)
    if app.http is not None:
        print(f"mailpool: HTTP listening on {settings.http_host}:{app.http.port}", flush=True)
    for name in app.listeners:
        port = app.listener_port(name)
        print(f"mailpool: {name.upper()} listening on {settings.inbound_host}:{port}", flush=True)
    if app.metrics_port is not None:
        where = f"{settings.metrics_host}:{app.metrics_port}"
        print(f"mailpool: metrics at http://{where}/metrics", flush=True)
    if app.loops is not None:
        print(f"mailpool: dispatching (maildir at {settings.maildir()})", flush=True)
    if app.relay is not None:
        print(f"mailpool: relaying webhooks as {app.relay.relay.owner}", flush=True)


async def _serve(app: App, args: argparse.Namespace) -> int:
    """serve: everything; dispatcher: the dispatcher and timers; inbound: the listeners;
    relay: the webhook relay."""
    stop = _stop_on_signals()
    try:
        await app.start(grpc_server=args.command == "serve")
        heap.settle()
        _announce(app)
        await stop.wait()
    finally:
        await app.stop()
    print("mailpool: stopped", flush=True)
    return 0


def _shim(args: argparse.Namespace) -> int:
    """The shim alone, in front of a (remote) gRPC server: no database needed."""

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        settings = tls_settings(Settings(), args)
        host = args.host or settings.http_host
        port = settings.http_port if args.http_port is None else args.http_port
        grpc_tls = None
        if args.tls_ca or args.tls_client_cert or args.tls_client_key:
            grpc_tls = ClientTls.load(
                args.tls_ca, args.tls_client_cert, args.tls_client_key, settings.tls_server_name
            )
        http = await start_http(
            args.grpc_target,
            host,
            port or 0,
            grace_s=5.0,
            tls=load_tls(settings),
            grpc_tls=grpc_tls,
            ui=settings.ui and not args.no_ui,
        )
        print(f"mailpool: HTTP listening on {host}:{http.port} -> {args.grpc_target}", flush=True)
        try:
            await stop.wait()
        finally:
            await http.stop()

    event_loop.run(run())
    return 0


async def _org_create(app: App, args: argparse.Namespace) -> int:
    org = await app.admin.create_org(args.name)
    print(f"created org {org.name} ({org.id})")
    return 0


async def _key_create(app: App, args: argparse.Namespace) -> int:
    print(await app.admin.create_key(args.org))
    return 0


async def _key_list(app: App, args: argparse.Namespace) -> int:
    for key in await app.admin.list_keys(args.org):
        state = "active" if key.revoked_at is None else f"revoked {iso_ms(key.revoked_at)}"
        print(f"{key.prefix}…\t{iso_ms(key.created_at)}\t{state}")
    return 0


async def _key_revoke(app: App, args: argparse.Namespace) -> int:
    key = await app.admin.revoke_key(args.org, args.key)
    print(f"revoked {key.prefix}…")
    return 0


async def _identity_create(app: App, args: argparse.Namespace) -> int:
    today = await app.admin.create_identity(
        args.org,
        args.handle,
        Tier(args.tier),
        IdentityState(args.state),
        args.warmup_stage,
    )
    _print_json(identity_json(today))
    return 0


async def _identity_set_state(app: App, args: argparse.Namespace) -> int:
    await app.admin.set_identity_state(args.handle, IdentityState(args.state))
    print(f"{args.handle}: {args.state}")
    return 0


async def _identity_set_hours(app: App, args: argparse.Namespace) -> int:
    await app.admin.set_working_hours(args.handle, args.tz, args.start, args.end)
    window = f"{args.start}-{args.end} {args.tz}" if args.tz else "any time"
    print(f"{args.handle}: cold sends {window}")
    return 0


async def _identity_show(app: App, args: argparse.Namespace) -> int:
    _print_json(identity_json(await app.admin.show_identity(args.handle)))
    return 0


async def _mailbox_add(app: App, args: argparse.Namespace) -> int:
    mailbox = await app.admin.add_mailbox(
        args.identity,
        args.email,
        smtp_url=args.smtp,
        warmup_stage=args.warmup_stage,
        health=args.health,
    )
    print(f"added mailbox {mailbox.email} ({mailbox.id}, {mailbox.transport.value})")
    return 0


async def _demo(app: App, args: argparse.Namespace) -> int:
    setup = await app.admin.demo()
    handle = setup.identity.identity.handle
    port, http_port = app.settings.grpc_port, app.settings.http_port
    print(
        f"""Demo org {setup.org.name!r}, identity {handle} (starter, active).
New API key (shown once):

  export MAILPOOL_KEY={setup.key}

With `mailpool serve` running, over HTTP (port {http_port}):

  curl -s -X POST http://127.0.0.1:{http_port}/v1/identities/{handle}/send \\
    -H "Authorization: Bearer $MAILPOOL_KEY" -H "Content-Type: application/json" \\
    -d '{{"to": "morgan@northwind.example", "subject": "Hi", "text": "Hello"}}'

or over gRPC (port {port}):

  grpcurl -plaintext -H "authorization: Bearer $MAILPOOL_KEY" \\
    -d '{{"identity": "{handle}"}}' 127.0.0.1:{port} mailpool.v1.IdentityService/GetIdentity"""
    )
    return 0


def _webhooks(app: App, args: argparse.Namespace) -> WebhookAdmin:
    allow = getattr(args, "allow_http_loopback", False) or app.settings.webhook_allow_http_loopback
    return WebhookAdmin(app.store, app.clock, allow_http_loopback=allow)


def webhook_json(view: WebhookView) -> dict[str, Any]:
    """An endpoint as `admin webhook show` prints it: never the secret."""
    e = view.endpoint
    return {
        "org": view.org.name,
        "url": e.url,
        "status": e.status.value,
        "pausedReason": e.paused_reason.value if e.paused_reason else None,
        "pausedAtIso": iso_ms(e.paused_at) if e.paused_at is not None else None,
        "failedDeliveriesInARow": e.failed_deliveries,
        "createdAtIso": iso_ms(e.created_at),
        "relay": (
            {"owner": e.lease_owner, "leaseUntilIso": iso_ms(e.lease_until)}
            if e.lease_owner is not None and e.lease_until is not None
            else None
        ),
        "behind": sum(max(0, c.head - c.cursor) for c in view.cursors),
        "cursors": [
            {"identity": c.handle, "cursor": c.cursor, "head": c.head} for c in view.cursors
        ],
    }


async def _webhook_set(app: App, args: argparse.Namespace) -> int:
    endpoint, secret = await _webhooks(app, args).set(args.org, args.url)
    if secret is not None:
        print(secret)  # the only time it is shown: stdout holds it alone, for scripts
    else:
        print(f"webhook of {args.org} now posts to {endpoint.url} (secret unchanged)")
    return 0


async def _webhook_rotate(app: App, args: argparse.Namespace) -> int:
    print(await _webhooks(app, args).rotate_secret(args.org))
    return 0


async def _webhook_enable(app: App, args: argparse.Namespace) -> int:
    await _webhooks(app, args).enable(args.org, from_now=args.from_now)
    resumes = "from now on" if args.from_now else "from where it paused"
    print(f"webhook of {args.org}: active (delivers {resumes})")
    return 0


async def _webhook_disable(app: App, args: argparse.Namespace) -> int:
    await _webhooks(app, args).disable(args.org)
    print(f"webhook of {args.org}: paused (operator)")
    return 0


async def _webhook_show(app: App, args: argparse.Namespace) -> int:
    _print_json(webhook_json(await _webhooks(app, args).show(args.org)))
    return 0


def _states() -> list[str]:
    return [s.value for s in IdentityState]


class Parser(argparse.ArgumentParser):
    """argparse, with a usage mistake as one line (DESIGN.md §4), not usage + error."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def _port(low: int, meaning: str) -> Callable[[str], int]:
    def port(text: str) -> int:
        value = int(text) if re.fullmatch(r"-?[0-9]{1,6}", text.strip()) else None
        if value is None or not low <= value <= 65535:
            raise argparse.ArgumentTypeError(f"{text!r} is not a port ({low}..65535, {meaning})")
        return value

    return port


PORT = _port(0, "0 = a free port")
PORT_OR_OFF = _port(-1, "0 = a free port, -1 = off")


def build_parser() -> argparse.ArgumentParser:
    common = Parser(add_help=False)
    common.add_argument(
        "--db", help="database URL (default: $MAILPOOL_DATABASE_URL, else .mailpool/mailpool.db)"
    )
    parser = Parser(prog="mailpool", description=__doc__)
    # A command given without its subcommand prints the help of what was given.
    parser.set_defaults(run=None, usage=parser)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    def group(parent: Any, name: str, help_text: str, dest: str = "verb") -> Any:
        sub: argparse.ArgumentParser = parent.add_parser(name, help=help_text)
        sub.set_defaults(run=None, usage=sub)
        return sub.add_subparsers(dest=dest, metavar="COMMAND")

    def leaf(group: Any, name: str, run: Command, help_text: str) -> argparse.ArgumentParser:
        sub: argparse.ArgumentParser = group.add_parser(name, parents=[common], help=help_text)
        sub.set_defaults(run=run, usage=sub)
        return sub

    serve = leaf(
        commands,
        "serve",
        _serve,
        "run gRPC, the HTTP shim, the dispatcher and the inbound listener",
    )
    serve.add_argument("--grpc-port", type=PORT, help="gRPC port (default 50051; 0 = free port)")
    serve.add_argument(
        "--http-port", type=PORT, help="HTTP shim port (default 8080; 0 = free port)"
    )
    serve.add_argument("--host", help="address gRPC and HTTP listen on (default 127.0.0.1)")
    serve.add_argument(
        "--no-dispatcher",
        action="store_true",
        help="do not deliver here (run `mailpool dispatcher` elsewhere)",
    )
    serve.add_argument(
        "--no-webhook-relay",
        action="store_true",
        help="do not relay webhooks here (run `mailpool relay` elsewhere)",
    )
    dispatcher = leaf(commands, "dispatcher", _serve, "run only the dispatcher and timers")
    relay = leaf(commands, "relay", _serve, "run only the webhook relay")
    relay.set_defaults(inbound_port=-1, lmtp_port=-1)
    inbound = leaf(commands, "inbound", _serve, "run only the inbound SMTP/LMTP listener")
    for sub in (serve, inbound):
        sub.add_argument(
            "--inbound-port",
            type=PORT_OR_OFF,
            help="inbound SMTP port (default 2525; 0 = free port; -1 = off)",
        )
        sub.add_argument(
            "--lmtp-port",
            type=PORT_OR_OFF,
            help="inbound LMTP port (default off; 0 = free port; -1 = off)",
        )
    dispatcher.set_defaults(inbound_port=-1, lmtp_port=-1)
    for sub in (serve, dispatcher, inbound):
        sub.add_argument(
            "--metrics-port",
            type=PORT_OR_OFF,
            help="Prometheus /metrics port (default off; 0 = free port; -1 = off)",
        )
    for sub in (serve, inbound):
        add_tls_flags(sub, serve=sub is serve)
    shim = commands.add_parser("shim", help="run only the HTTP shim, in front of a gRPC server")
    shim.add_argument("--grpc-target", required=True, help="host:port of a mailpool gRPC server")
    shim.add_argument("--http-port", type=PORT, help="HTTP port (default 8080; 0 = free port)")
    shim.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    for sub in (serve, shim):
        sub.add_argument(
            "--no-ui",
            action="store_true",
            help="do not serve the operator dashboard at /ui/ ($MAILPOOL_UI=0)",
        )
    add_tls_flags(shim, serve=False, listener="HTTPS")
    shim.add_argument(
        "--tls-ca", type=Path, help="dial --grpc-target over TLS, trusting this CA (PEM)"
    )
    shim.add_argument(
        "--tls-client-cert", type=Path, help="client certificate for a gRPC server with mTLS"
    )
    shim.add_argument("--tls-client-key", type=Path, help="the client certificate's key")
    shim.add_argument(
        "--tls-server-name",
        help="name the gRPC server's certificate carries, when not --grpc-target's host",
    )
    shim.set_defaults(run=None, usage=shim)
    leaf(commands, "demo", _demo, "create a demo org, key and identity and say how to call it")
    add_tail_command(commands)

    admin = group(commands, "admin", "operator commands", dest="noun")
    org = group(admin, "org", "orgs (names are unique regardless of case)")
    leaf(org, "create", _org_create, "create an org").add_argument("name")

    key = group(admin, "key", "API keys of an org")
    for name, run, help_text in (
        ("create", _key_create, "create a key; prints only the key"),
        ("list", _key_list, "list keys by prefix"),
        ("revoke", _key_revoke, "revoke a key: the whole key, or its listed prefix"),
    ):
        sub = leaf(key, name, run, help_text)
        sub.add_argument("--org", required=True)
        if name == "revoke":
            sub.add_argument("key", help="sk_live_ + 40 hex digits, or the prefix key list shows")

    identity = group(admin, "identity", "identities (sending handles)")
    stages = f"0..{MAX_WARMUP_STAGE}"
    create = leaf(identity, "create", _identity_create, "create an identity and its mailboxes")
    create.add_argument("--org", required=True)
    create.add_argument("--handle", required=True)
    create.add_argument("--tier", required=True, choices=[t.value for t in Tier])
    create.add_argument("--state", default=IdentityState.ACTIVE.value, choices=_states())
    create.add_argument(
        "--warmup-stage", type=int, default=0, help=f"of its mailboxes ({stages}; default 0)"
    )
    set_state = leaf(identity, "set-state", _identity_set_state, "change an identity's state")
    set_state.add_argument("handle")
    set_state.add_argument("state", choices=_states())
    leaf(identity, "show", _identity_show, "show an identity as JSON").add_argument("handle")
    hours = leaf(
        identity,
        "set-hours",
        _identity_set_hours,
        "cold sends only inside a daily window (no flags: clear it)",
    )
    hours.add_argument("handle")
    hours.add_argument("--tz", help="IANA time zone, e.g. Europe/Berlin")
    hours.add_argument("--from", dest="start", help="window start, e.g. 09:00")
    hours.add_argument("--to", dest="end", help="window end, e.g. 17:30")

    mailbox = group(admin, "mailbox", "mailboxes of an identity")
    add = leaf(mailbox, "add", _mailbox_add, "add a mailbox to an identity")
    add.add_argument("--identity", required=True)
    add.add_argument("--email", required=True)
    add.add_argument("--smtp", help="smtp://user:secret@host:587?tls=starttls|none, or smtps://…")
    add.add_argument("--warmup-stage", type=int, default=0, help=f"{stages} (default 0)")
    add.add_argument("--health", type=int, default=100, help="0..100 (default 100)")

    webhook = group(admin, "webhook", "the org's webhook endpoint (one per org)")
    for name, run, help_text in (
        ("set", _webhook_set, "create the endpoint (prints its secret, once) or change its URL"),
        ("rotate-secret", _webhook_rotate, "replace the secret at once; prints the new one"),
        ("enable", _webhook_enable, "resume a paused endpoint from where it paused"),
        ("disable", _webhook_disable, "pause the endpoint"),
        ("show", _webhook_show, "show the endpoint as JSON (never the secret)"),
    ):
        sub = leaf(webhook, name, run, help_text)
        sub.add_argument("--org", required=True)
        if name == "set":
            sub.add_argument("--url", required=True, help="https://… (the endpoint)")
            sub.add_argument(
                "--allow-http-loopback",
                action="store_true",
                help="accept http:// for a loopback host (tests, local development)",
            )
        if name == "enable":
            sub.add_argument(
                "--from-now",
                action="store_true",
                help="skip what arrived while paused (receivers backfill from the events API)",
            )
    return parser


def settings_from(args: argparse.Namespace) -> Settings:
    settings = Settings()
    if args.db is not None:
        settings.database_url = database_url(args.db, "--db")
    else:
        from_env = bool(os.environ.get("MAILPOOL_DATABASE_URL"))
        source = "MAILPOOL_DATABASE_URL" if from_env else "the database URL"
        settings.database_url = database_url(settings.database_url, source)
    if getattr(args, "grpc_port", None) is not None:
        settings.grpc_port = args.grpc_port
    if getattr(args, "http_port", None) is not None:
        settings.http_port = args.http_port
    if getattr(args, "host", None):
        settings.grpc_host = settings.http_host = args.host
    if getattr(args, "inbound_port", None) is not None:
        settings.inbound_port = None if args.inbound_port < 0 else args.inbound_port
    if getattr(args, "lmtp_port", None) is not None:
        settings.lmtp_port = None if args.lmtp_port < 0 else args.lmtp_port
    if args.command in ("inbound", "relay") or getattr(args, "no_dispatcher", False):
        settings.run_dispatcher = False
    if args.command in ("dispatcher", "inbound") or getattr(args, "no_webhook_relay", False):
        settings.run_webhook_relay = False
    elif args.command == "relay":
        settings.run_webhook_relay = True
    if getattr(args, "no_ui", False):
        settings.ui = False
    if getattr(args, "metrics_port", None) is not None:
        settings.metrics_port = None if args.metrics_port < 0 else args.metrics_port
    if getattr(args, "host", None) and not os.environ.get("MAILPOOL_METRICS_HOST"):
        settings.metrics_host = args.host
    return tls_settings(settings, args)


def add_tls_flags(sub: argparse.ArgumentParser, *, serve: bool, listener: str = "") -> None:
    """--tls-cert/--tls-key (and --tls-client-ca) for a command's listeners."""
    what = listener or ("gRPC, HTTP and STARTTLS on inbound SMTP" if serve else "STARTTLS")
    sub.add_argument(
        "--tls-cert", type=Path, help=f"certificate chain (PEM) for {what} ($MAILPOOL_TLS_CERT)"
    )
    sub.add_argument("--tls-key", type=Path, help="its private key (PEM) ($MAILPOOL_TLS_KEY)")
    if serve or listener:
        sub.add_argument(
            "--tls-client-ca",
            type=Path,
            help="require client certificates signed by this CA (mTLS) ($MAILPOOL_TLS_CLIENT_CA)",
        )
    if serve:
        sub.add_argument(
            "--tls-ca",
            type=Path,
            help="CA the built-in shim trusts for its own gRPC port "
            "(default: the client CA, else the certificate file) ($MAILPOOL_TLS_CA)",
        )
        sub.add_argument(
            "--tls-server-name",
            help="name in the certificate, when it is not valid for 127.0.0.1, which the "
            "built-in shim dials ($MAILPOOL_TLS_SERVER_NAME)",
        )


def tls_settings(settings: Settings, args: argparse.Namespace) -> Settings:
    """The TLS flags given, over the environment's."""
    for name in ("tls_cert", "tls_key", "tls_client_ca", "tls_server_name"):
        if getattr(args, name, None) is not None:
            setattr(settings, name, getattr(args, name))
    if args.command != "shim" and getattr(args, "tls_ca", None) is not None:
        settings.tls_ca = args.tls_ca
    return settings


async def _run(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    run: Command = args.run
    if run is _serve:
        # A taken port is reported before the database is created or migrated; App.start
        # binds for real and still fails cleanly if a port is taken in between.
        for listener, host, port in listen_addresses(settings, grpc_server=args.command == "serve"):
            check_free(listener, host, port)
    app = await App.open(settings)
    if run is _serve:  # owns the app's lifetime itself
        return await run(app, args)
    try:
        return await run(app, args)
    finally:
        await app.database.dispose()


def explain(error: StartupError) -> str:
    """The one line for a start-up mistake, in the CLI's own terms (its flags)."""
    if not isinstance(error, CannotListen):
        return str(error)
    flag = PORT_FLAGS[error.listener]
    if isinstance(error, PortInUse):
        return f"port {error.port} is in use; pass {flag} N (0 = free port)"
    if error.port_refused:
        return f"{error}; pass {flag} N (0 = free port)"
    host_flag = "--host" if error.listener in ("grpc", "http") else "MAILPOOL_INBOUND_HOST"
    if error.listener == "metrics":
        host_flag = "MAILPOOL_METRICS_HOST or --host"
    return f"{error}; check {host_flag}"


def main(argv: Sequence[str] | None = None) -> int:
    """Exit codes: 0 done; 1 an admin command refused (the line says why); 2 a usage or
    start-up mistake (an incomplete command prints its help)."""
    args = build_parser().parse_args(argv)
    if args.command == "tail":
        return run_tail(args)
    if args.run is None and args.command != "shim":
        args.usage.print_help(sys.stderr)
        return 2
    servers = ("serve", "shim", "dispatcher", "inbound", "relay")
    try:
        logs.configure(Settings().log_level if args.command in servers else "WARNING")
        if args.command == "shim":
            return _shim(args)
        return event_loop.run(_run(args))
    except AdminError as error:
        print(f"mailpool: {error}", file=sys.stderr)
        for hint in error.hints:
            print(f"  {hint}", file=sys.stderr)
        return 1
    except StartupError as error:
        print(f"mailpool: {explain(error)}", file=sys.stderr)
        return 2
