"""The live tail across a restart of the server behind the shim: the browser's
EventSource reconnects by itself with Last-Event-ID and the list carries on with no
event twice and none missing.

The shim runs alone (`mailpool shim`) in front of `mailpool serve --no-ui`, so the
sessions (held by the shim) survive while the server, and with it every stream,
goes away and comes back on the same port."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from tests.client.servers import free_port
from tests.ui.conftest import new_context, sign_in
from tests.ui.support import Api, IdentitySeed, Process, make_tenant, serve_args


@pytest.mark.slow  # three processes and a restart: about 20 s
def test_the_tail_resumes_after_the_server_restarts(
    browser: Browser, tmp_path: Path, migrated_sqlite: Path
) -> None:
    shutil.copyfile(migrated_sqlite, tmp_path / "mailpool.db")
    database_url = f"sqlite:///{tmp_path / 'mailpool.db'}"
    env = {
        **os.environ,
        "MAILPOOL_DATABASE_URL": database_url,
        "MAILPOOL_DATA_DIR": str(tmp_path),
        "MAILPOOL_LOG_LEVEL": "WARNING",
    }
    tenant = make_tenant(
        database_url, tmp_path, "resume", [IdentitySeed("tail.resume@mailpool.local")]
    )
    grpc_port = free_port()
    server_args = serve_args(grpc_port=grpc_port, extra=["--no-ui"])
    server = Process(server_args, env, tmp_path / "serve.log")
    shim = Process(
        ["shim", "--grpc-target", f"127.0.0.1:{grpc_port}", "--http-port", "0"],
        env,
        tmp_path / "shim.log",
    )
    api = Api(f"127.0.0.1:{grpc_port}")
    context = new_context(browser, f"http://127.0.0.1:{shim.ports['HTTP']}")
    try:
        page = context.new_page()
        sign_in(page, tenant.key)
        api.send(tenant, "before1@northwind.example")
        api.send(tenant, "before2@northwind.example")
        page.goto(f"/ui/identities/{tenant.handle}/events")
        status = page.locator("#tail-status")
        entries = page.locator("#tail li")
        expect(status).to_contain_text("Live")
        expect(entries).to_have_count(2)

        server.stop()
        expect(status).to_contain_text("reconnecting")  # the stream really broke
        server = Process(server_args, env, tmp_path / "serve.log")
        for n in range(3):
            api.send(tenant, f"after{n}@northwind.example", wait_for_ready=True)

        expect(entries).to_have_count(5)
        expect(status).to_contain_text("Live")
        seqs = [int(e.get_attribute("data-seq") or 0) for e in entries.all()]
        assert seqs == [1, 2, 3, 4, 5]
        expect(entries.nth(4)).to_contain_text("to after2@northwind.example")
    finally:
        context.close()
        api.close()
        shim.stop()
        server.stop()
