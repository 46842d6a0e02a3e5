"""Prometheus metrics: off unless a port is given; on their own port; counted where
things happen; the alert rules and the dashboard name only metrics the server exports."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from mailpool.v1 import send_service_pb2_grpc as send_grpc
from mailpool_server.app import App
from mailpool_server.config import Settings
from mailpool_server.metrics import Metrics, QueueSnapshot
from tests.delivery.helpers import deliver_all
from tests.sending import request
from tests.support import Tenant

ROOT = Path(__file__).resolve().parents[2]
SEND = "/mailpool.v1.SendService/Send"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    settings.http_port = 0
    settings.metrics_port = 0
    settings.cold_gap_ms = 0
    return settings


@pytest.fixture
async def scrape(app: App) -> AsyncIterator[httpx.AsyncClient]:
    assert app.metrics_port is not None
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{app.metrics_port}") as client:
        yield client


async def samples(client: httpx.AsyncClient) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = await client.get("/metrics")
    assert response.status_code == 200
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def value(
    found: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


async def test_off_unless_a_port_is_given(settings: Settings, app: App) -> None:
    assert app.metrics is not None  # this module's settings turn it on
    off = Settings(database_url=settings.database_url, grpc_port=0, http_port=None)
    assert off.metrics_port is None


async def test_counts_what_happens(
    app: App, channel: grpc.aio.Channel, tenant: Tenant, scrape: httpx.AsyncClient
) -> None:
    stub = send_grpc.SendServiceStub(channel)
    keyed = request(tenant, to=["morgan@northwind.example", "not-an-address"], idempotency_key="k1")
    await stub.Send(keyed, metadata=tenant.metadata)
    await stub.Send(keyed, metadata=tenant.metadata)  # a replay
    changed = request(tenant, to="someone@else.example", idempotency_key="k1")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Send(changed, metadata=tenant.metadata)
    assert caught.value.code() == grpc.StatusCode.ABORTED
    assert app.http is not None
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{app.http.port}") as http:
        await http.get(
            f"/v1/identities/{tenant.handle}/conversations",
            headers={"Authorization": f"Bearer {tenant.key}"},
        )
    assert app.refresher is not None
    await app.refresher.refresh()
    before = await samples(scrape)
    assert value(before, "mailpool_queue_rows", state="queued") == 1
    await deliver_all(app)
    await app.refresher.refresh()
    found = await samples(scrape)

    assert value(found, "mailpool_rpc_duration_seconds_count", method=SEND, code="OK") == 2
    assert value(found, "mailpool_rpc_duration_seconds_count", method=SEND, code="ABORTED") == 1
    assert value(found, "mailpool_send_recipients_accepted_total", tier="starter") == 1
    rejected = "mailpool_send_recipients_rejected_total"
    assert value(found, rejected, tier="starter", reason="invalid_recipient") == 1
    assert value(found, "mailpool_idempotent_replays_total") == 1
    assert value(found, "mailpool_conflicts_total", reason="IDEMPOTENCY_KEY_REUSED") == 1
    route = "/v1/identities/{handle}/conversations"
    http_count = "mailpool_http_request_duration_seconds_count"
    assert value(found, http_count, route=route, method="GET", status="200") == 1
    assert value(found, "mailpool_deliveries_total", transport="maildir", outcome="sent") == 1
    assert value(found, "mailpool_queue_rows", state="queued") == 0
    assert value(found, "mailpool_queue_rows", state="sent") == 1
    assert value(found, "mailpool_queue_oldest_due_age_seconds") == 0
    if app.database.dialect == "sqlite":
        assert value(found, "mailpool_sqlite_group_commit_units_count") > 0
    else:
        assert value(found, "mailpool_db_pool_size") > 0
    assert value(found, "process_resident_memory_bytes") > 0


def test_the_alert_rules_and_the_dashboard_name_exported_metrics() -> None:
    metrics = Metrics()
    metrics.snapshots.snapshot = QueueSnapshot({"queued": 0}, 0.0, 0, 0)
    metrics.snapshots.pool = lambda: (0, 0)
    exported = metrics.exported_names()
    names = re.compile(r"\b(?:mailpool|process)_[a-z_]+\b")

    rules = yaml.safe_load((ROOT / "ops/prometheus/alerts.yml").read_text())
    exprs = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    assert exprs and all(names.search(e) for e in exprs)
    dashboard = json.loads((ROOT / "ops/grafana/mailpool.json").read_text())
    exprs += [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    unknown = {n for e in exprs for n in names.findall(e)} - exported
    assert not unknown, f"not exported: {sorted(unknown)}"
