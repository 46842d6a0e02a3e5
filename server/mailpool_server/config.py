"""Settings from the environment, overridden by command-line flags."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from mailpool_server.startup import BadSetting

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def env_int(name: str, default: int, low: int, high: int | None = None, what: str = "") -> int:
    """An integer environment variable within [low, high]; BadSetting (one line for the
    operator) otherwise."""
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    value = int(text) if re.fullmatch(r"-?\d{1,10}", text) else None
    if value is None or value < low or (high is not None and value > high):
        bounds = f"{low}..{high}" if high is not None else f"{low} or more"
        raise BadSetting(f"{name}={text!r} is not {what or 'a whole number'} ({bounds})")
    return value


def env_port(name: str, default: int | None) -> int | None:
    """An inbound listener's port: 0 = a free port, -1 = no listener."""
    value = env_int(name, -1 if default is None else default, -1, 65535, "a port, or -1 = off")
    return None if value == -1 else value


def _port(name: str, default: int) -> int:
    return env_int(name, default, 0, 65535, "a port (0 = a free port)")


def env_flag(name: str, default: bool) -> bool:
    """A yes/no environment variable: 1/0, true/false, yes/no, on/off."""
    text = os.environ.get(name, "").strip().lower()
    if not text:
        return default
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise BadSetting(f"{name}={text!r} is not 1 or 0 (true/false, yes/no, on/off)")


def _log_level() -> str:
    level = os.environ.get("MAILPOOL_LOG_LEVEL", "").strip().upper() or "INFO"
    if level not in LOG_LEVELS:
        raise BadSetting(f"MAILPOOL_LOG_LEVEL={level!r} is not one of {', '.join(LOG_LEVELS)}")
    return level


def env_path(name: str) -> Path | None:
    """A file named by an environment variable; None when unset or empty."""
    text = os.environ.get(name, "").strip()
    return Path(text) if text else None


def default_data_dir() -> Path:
    return Path(os.environ.get("MAILPOOL_DATA_DIR", ".mailpool"))


def default_database_url() -> str:
    """MAILPOOL_DATABASE_URL, else a SQLite file in the data folder (created on use)."""
    url = os.environ.get("MAILPOOL_DATABASE_URL")
    if url:
        return url
    return f"sqlite:///{default_data_dir() / 'mailpool.db'}"


@dataclass
class Settings:
    database_url: str = field(default_factory=default_database_url)
    grpc_host: str = field(
        default_factory=lambda: os.environ.get("MAILPOOL_GRPC_HOST", "127.0.0.1")
    )
    grpc_port: int = field(default_factory=lambda: _port("MAILPOOL_GRPC_PORT", 50051))
    http_host: str = field(
        default_factory=lambda: os.environ.get("MAILPOOL_HTTP_HOST", "127.0.0.1")
    )
    # None: no HTTP shim (a gRPC-only server).
    http_port: int | None = field(default_factory=lambda: _port("MAILPOOL_HTTP_PORT", 8080))
    # The operator dashboard at /ui/ on the HTTP port (MAILPOOL_UI=0 or --no-ui: off).
    ui: bool = field(default_factory=lambda: env_flag("MAILPOOL_UI", True))
    # Where provisioned mailboxes get their addresses.
    mailbox_domain: str = field(
        default_factory=lambda: os.environ.get(
            "MAILPOOL_MAILBOX_DOMAIN", "mailboxes.mailpool.local"
        )
    )
    data_dir: Path = field(default_factory=default_data_dir)
    db_pool_size: int = field(default_factory=lambda: env_int("MAILPOOL_DB_POOL_SIZE", 10, 1))
    db_max_overflow: int = field(default_factory=lambda: env_int("MAILPOOL_DB_MAX_OVERFLOW", 10, 0))
    # Minimum gap between two cold sends from one mailbox (warm sends are not paced).
    cold_gap_ms: int = field(default_factory=lambda: env_int("MAILPOOL_COLD_GAP_MS", 60000, 0))
    # How long a duplicate waits for the first request with its Idempotency-Key.
    idempotency_wait_s: float = 10.0
    # StreamEvents: heartbeat after this much quiet (a stream re-checks its API key at
    # half of it); end a subscriber that cannot take one more message for stream_stall_s.
    heartbeat_s: float = field(
        default_factory=lambda: float(
            env_int("MAILPOOL_HEARTBEAT_S", 15, 1, 3600, "a whole number of seconds")
        )
    )
    stream_stall_s: float = 60.0
    # Delivery. maildir_root: where the maildir transport writes (default data_dir/maildir).
    run_dispatcher: bool = True
    maildir_root: Path | None = None
    # Inbound SMTP / LMTP listeners; None turns one off (-1 in the environment).
    inbound_host: str = field(
        default_factory=lambda: os.environ.get("MAILPOOL_INBOUND_HOST", "127.0.0.1")
    )
    inbound_port: int | None = field(
        default_factory=lambda: env_port("MAILPOOL_INBOUND_PORT", 2525)
    )
    lmtp_port: int | None = field(default_factory=lambda: env_port("MAILPOOL_LMTP_PORT", None))
    log_level: str = field(default_factory=_log_level)
    # Seconds the server waits for in-flight calls on SIGTERM before cancelling them.
    shutdown_grace_s: float = 5.0
    # The webhook relay: runs in `serve` (MAILPOOL_WEBHOOK_RELAY=0 or --no-webhook-relay
    # turns it off) and alone as `mailpool relay`. Its lease on an endpoint lasts
    # webhook_lease_s and is renewed every third of it; another relay takes over an
    # endpoint that long after its relay died.
    run_webhook_relay: bool = field(
        default_factory=lambda: env_flag("MAILPOOL_WEBHOOK_RELAY", True)
    )
    webhook_lease_s: float = field(
        default_factory=lambda: float(env_int("MAILPOOL_WEBHOOK_LEASE_S", 30, 1, 3600))
    )
    webhook_poll_s: float = 1.0
    webhook_timeout_s: float = 10.0
    # `admin webhook set` accepts http:// for loopback hosts (tests, local development).
    webhook_allow_http_loopback: bool = field(
        default_factory=lambda: env_flag("MAILPOOL_WEBHOOK_ALLOW_HTTP_LOOPBACK", False)
    )

    # Prometheus metrics on their own port (None: off, the default), so the public
    # ports expose nothing new.
    metrics_port: int | None = field(
        default_factory=lambda: env_port("MAILPOOL_METRICS_PORT", None)
    )
    metrics_host: str = field(
        default_factory=lambda: os.environ.get("MAILPOOL_METRICS_HOST", "127.0.0.1")
    )
    # TLS for gRPC, the HTTP shim and STARTTLS on inbound SMTP (PEM files). With a client
    # CA, gRPC and HTTP require client certificates signed by it (mTLS). tls_ca: what the
    # built-in shim trusts when dialing its own gRPC port (default: the client CA, else
    # the certificate file itself); tls_server_name: the name it expects in the server
    # certificate when that is not valid for 127.0.0.1.
    tls_cert: Path | None = field(default_factory=lambda: env_path("MAILPOOL_TLS_CERT"))
    tls_key: Path | None = field(default_factory=lambda: env_path("MAILPOOL_TLS_KEY"))
    tls_client_ca: Path | None = field(default_factory=lambda: env_path("MAILPOOL_TLS_CLIENT_CA"))
    tls_ca: Path | None = field(default_factory=lambda: env_path("MAILPOOL_TLS_CA"))
    tls_server_name: str | None = field(
        default_factory=lambda: os.environ.get("MAILPOOL_TLS_SERVER_NAME") or None
    )

    def maildir(self) -> Path:
        return self.maildir_root or self.data_dir / "maildir"
