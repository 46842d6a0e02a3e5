"""TLS on every listener: gRPC, the HTTP shim (built in, and alone in front of a remote
gRPC server), STARTTLS on inbound SMTP; mTLS with a client CA; bad files as one line."""

from __future__ import annotations

import ssl
from pathlib import Path

import aiosmtplib
import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from mailpool.v1 import identity_service_pb2 as identity_pb
from mailpool.v1 import identity_service_pb2_grpc as identity_grpc
from mailpool_server import cli, logs
from mailpool_server.app import App
from mailpool_server.config import Settings
from mailpool_server.rest.server import start_http
from mailpool_server.service.clock import FakeClock
from mailpool_server.tls import BadTls, ClientTls, ServerTls
from tests.ops.certs import Pair, Pki, make_pki
from tests.support import Tenant, make_tenant


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def mutual() -> bool:
    return False


@pytest.fixture
def settings(settings: Settings, pki: Pki, mutual: bool) -> Settings:
    settings.http_port = 0
    settings.inbound_port = 0
    settings.tls_cert = pki.server.cert
    settings.tls_key = pki.server.key
    settings.tls_ca = pki.ca
    if mutual:
        settings.tls_client_ca = pki.ca
    return settings


def grpc_credentials(pki: Pki, client: Pair | None = None) -> grpc.ChannelCredentials:
    return grpc.ssl_channel_credentials(
        pki.ca.read_bytes(),
        client.key.read_bytes() if client else None,
        client.cert.read_bytes() if client else None,
    )


def http_context(pki: Pki, client: Pair | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki.ca))
    if client is not None:
        context.load_cert_chain(client.cert, client.key)
    return context


@pytest.fixture
async def tls_tenant(app: App) -> Tenant:
    return await make_tenant(app, "acme", "alice.acme@mailpool.local")


async def get_identity(channel: grpc.aio.Channel, tenant: Tenant) -> str:
    stub = identity_grpc.IdentityServiceStub(channel)
    response = await stub.GetIdentity(
        identity_pb.GetIdentityRequest(identity=tenant.handle), metadata=tenant.metadata, timeout=10
    )
    return response.identity.handle


async def health(channel: grpc.aio.Channel) -> int:
    stub = health_pb2_grpc.HealthStub(channel)
    return int((await stub.Check(health_pb2.HealthCheckRequest(), timeout=10)).status)


def grpc_target(app: App) -> str:
    assert app.grpc is not None
    return f"localhost:{app.grpc.port}"


async def test_grpc_over_tls(app: App, pki: Pki, tls_tenant: Tenant) -> None:
    async with grpc.aio.secure_channel(grpc_target(app), grpc_credentials(pki)) as channel:
        assert await health(channel) == health_pb2.HealthCheckResponse.SERVING
        assert await get_identity(channel, tls_tenant) == tls_tenant.handle


async def test_plaintext_call_to_a_tls_port_fails(app: App) -> None:
    async with grpc.aio.insecure_channel(grpc_target(app)) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await health(channel)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_http_over_tls_and_the_shim_dials_grpc_over_tls(
    app: App, pki: Pki, tls_tenant: Tenant
) -> None:
    assert app.http is not None
    async with httpx.AsyncClient(
        base_url=f"https://localhost:{app.http.port}", verify=http_context(pki), timeout=30
    ) as client:
        response = await client.get(
            f"/v1/identities/{tls_tenant.handle}/conversations",
            headers={"Authorization": f"Bearer {tls_tenant.key}"},
        )
    # A 200 from a route that calls gRPC: the shim's own channel is TLS too.
    assert response.status_code == 200, response.text
    async with httpx.AsyncClient(base_url=f"http://localhost:{app.http.port}") as plain:
        with pytest.raises(httpx.HTTPError):
            await plain.get("/openapi.json")


class TestMutualTls:
    @pytest.fixture
    def mutual(self) -> bool:
        return True

    async def test_grpc_takes_only_clients_of_the_ca(
        self, app: App, pki: Pki, tls_tenant: Tenant
    ) -> None:
        for client in (None, pki.other_client):
            credentials = grpc_credentials(pki, client)
            async with grpc.aio.secure_channel(grpc_target(app), credentials) as channel:
                with pytest.raises(grpc.aio.AioRpcError) as caught:
                    await health(channel)
                assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
        credentials = grpc_credentials(pki, pki.client)
        async with grpc.aio.secure_channel(grpc_target(app), credentials) as channel:
            assert await health(channel) == health_pb2.HealthCheckResponse.SERVING
            assert await get_identity(channel, tls_tenant) == tls_tenant.handle

    async def test_http_takes_only_clients_of_the_ca(
        self, app: App, pki: Pki, tls_tenant: Tenant
    ) -> None:
        assert app.http is not None
        url = f"https://localhost:{app.http.port}/v1/identities/{tls_tenant.handle}/conversations"
        headers = {"Authorization": f"Bearer {tls_tenant.key}"}
        for client in (None, pki.other_client):
            async with httpx.AsyncClient(verify=http_context(pki, client)) as http:
                with pytest.raises(httpx.HTTPError):
                    (await http.get(url, headers=headers)).raise_for_status()
        async with httpx.AsyncClient(verify=http_context(pki, pki.client), timeout=30) as http:
            response = await http.get(url, headers=headers)
        # The built-in shim presented the server's own certificate to its gRPC port.
        assert response.status_code == 200, response.text

    async def test_the_shim_alone_in_front_over_tls(
        self, app: App, pki: Pki, tls_tenant: Tenant
    ) -> None:
        shim = await start_http(
            grpc_target(app),
            "127.0.0.1",
            0,
            grace_s=1.0,
            tls=ServerTls.load(pki.server.cert, pki.server.key),
            grpc_tls=ClientTls.load(pki.ca, pki.client.cert, pki.client.key),
        )
        try:
            async with httpx.AsyncClient(verify=http_context(pki), timeout=30) as http:
                response = await http.get(
                    f"https://localhost:{shim.port}/v1/identities/{tls_tenant.handle}/conversations",
                    headers={"Authorization": f"Bearer {tls_tenant.key}"},
                )
            assert response.status_code == 200, response.text
            assert response.headers["x-request-id"]
        finally:
            await shim.stop()


async def test_inbound_smtp_offers_starttls(app: App, pki: Pki) -> None:
    port = app.listener_port("smtp")
    smtp = aiosmtplib.SMTP(
        hostname="localhost", port=port, start_tls=False, tls_context=http_context(pki)
    )
    await smtp.connect()
    try:
        await smtp.ehlo()
        assert smtp.supports_extension("starttls")
        await smtp.starttls()
        assert smtp.transport is not None
        assert smtp.transport.get_extra_info("sslcontext") is not None
    finally:
        await smtp.quit()


def test_bad_files_are_one_line(pki: Pki, tmp_path: Path) -> None:
    missing = tmp_path / "nope.pem"
    with pytest.raises(BadTls, match=r"cannot read the certificate .*nope.pem .*--tls-cert"):
        ServerTls.load(missing, pki.server.key)
    with pytest.raises(BadTls, match=r"does not match the certificate"):
        ServerTls.load(pki.server.cert, pki.client.key)
    not_pem = tmp_path / "junk.pem"
    not_pem.write_text("hello")
    with pytest.raises(BadTls, match=r"not a PEM file.*--tls-client-ca"):
        ServerTls.load(pki.server.cert, pki.server.key, not_pem)


async def test_tls_settings_are_checked_when_the_app_opens(
    settings: Settings, clock: FakeClock, pki: Pki
) -> None:
    settings.tls_key = pki.client.key
    with pytest.raises(BadTls, match="does not match"):
        await App.open(settings, clock)
    settings.tls_key = None
    with pytest.raises(BadTls, match="go together"):
        await App.open(settings, clock)


def test_cli_says_one_line(
    pki: Pki, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    # cli.main routes logging to stderr; the test process keeps pytest's handlers.
    monkeypatch.setattr(logs, "configure", lambda level="INFO": None)
    code = cli.main(
        [
            "serve",
            "--grpc-port",
            "0",
            "--http-port",
            "0",
            "--inbound-port",
            "-1",
            "--tls-cert",
            str(pki.server.cert),
            "--tls-key",
            str(pki.client.key),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "does not match the certificate" in err, err
