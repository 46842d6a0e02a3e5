"""Settings from the environment, overridden by command-line flags."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import make_url


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
    grpc_port: int = field(
        default_factory=lambda: int(os.environ.get("MAILPOOL_GRPC_PORT", "50051"))
    )
    http_host: str = field(
        default_factory=lambda: os.environ.get("MAILPOOL_HTTP_HOST", "127.0.0.1")
    )
    # None: no HTTP shim (a gRPC-only server).
    http_port: int | None = field(
        default_factory=lambda: int(os.environ.get("MAILPOOL_HTTP_PORT", "8080"))
    )
    # Where provisioned mailboxes get their addresses.
    mailbox_domain: str = field(
        default_factory=lambda: os.environ.get(
            "MAILPOOL_MAILBOX_DOMAIN", "mailboxes.mailpool.local"
        )
    )
    data_dir: Path = field(default_factory=default_data_dir)
    db_pool_size: int = field(
        default_factory=lambda: int(os.environ.get("MAILPOOL_DB_POOL_SIZE", "10"))
    )
    db_max_overflow: int = field(
        default_factory=lambda: int(os.environ.get("MAILPOOL_DB_MAX_OVERFLOW", "10"))
    )
    # Minimum gap between two cold sends from one mailbox (warm sends are not paced).
    cold_gap_ms: int = field(
        default_factory=lambda: int(os.environ.get("MAILPOOL_COLD_GAP_MS", "60000"))
    )
    # How long a duplicate waits for the first request with its Idempotency-Key.
    idempotency_wait_s: float = 10.0
    # StreamEvents: heartbeat after this much quiet; end a subscriber that cannot take
    # one more message for stream_stall_s.
    heartbeat_s: float = 15.0
    stream_stall_s: float = 60.0
    # Delivery. maildir_root: where the maildir transport writes (default data_dir/maildir).
    run_dispatcher: bool = True
    maildir_root: Path | None = None
    # Inbound SMTP / LMTP listeners; None turns one off.
    inbound_host: str = field(
        default_factory=lambda: os.environ.get("MAILPOOL_INBOUND_HOST", "127.0.0.1")
    )
    inbound_port: int | None = field(
        default_factory=lambda: int(os.environ.get("MAILPOOL_INBOUND_PORT", "2525"))
    )
    lmtp_port: int | None = field(
        default_factory=lambda: (
            int(os.environ["MAILPOOL_LMTP_PORT"]) if os.environ.get("MAILPOOL_LMTP_PORT") else None
        )
    )
    log_level: str = field(default_factory=lambda: os.environ.get("MAILPOOL_LOG_LEVEL", "INFO"))
    # Seconds the server waits for in-flight calls on SIGTERM before cancelling them.
    shutdown_grace_s: float = 5.0

    def ensure_sqlite_folder(self) -> None:
        """SQLite creates the file but not its folder."""
        url = make_url(self.database_url)
        if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)

    def maildir(self) -> Path:
        return self.maildir_root or self.data_dir / "maildir"
