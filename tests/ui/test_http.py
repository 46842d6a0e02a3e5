"""The dashboard's HTTP rules, without a browser: forgery checks, cookies, headers,
the event stream's resume protocol, and --no-ui."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.ui.conftest import Site
from tests.ui.support import Api, Tenant, revoke_key, running, serve_args

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def signed_in(site: Site, key: str) -> tuple[httpx.Client, str]:
    """A client holding a session for `key`, and that session's CSRF token."""
    client = httpx.Client(base_url=site.base_url, timeout=30)
    form = client.get("/ui/signin")
    token = CSRF.search(form.text)
    assert token is not None
    answer = client.post("/ui/signin", data={"csrf": token.group(1), "key": key})
    assert answer.status_code == 303, answer.text
    page = client.get("/ui/")
    found = CSRF.search(page.text)
    assert found is not None
    return client, found.group(1)


@pytest.fixture
def tenant(site: Site) -> Tenant:
    return site.tenant()


@pytest.fixture
def session(site: Site, tenant: Tenant) -> Iterator[tuple[httpx.Client, str]]:
    client, token = signed_in(site, tenant.key)
    yield client, token
    client.close()


def test_sign_in_sets_a_strict_http_only_cookie_and_sign_out_ends_the_session(
    site: Site, tenant: Tenant
) -> None:
    with httpx.Client(base_url=site.base_url, timeout=30) as client:
        form = client.get("/ui/signin")
        token = CSRF.search(form.text)
        assert token is not None
        answer = client.post(
            "/ui/signin", data={"csrf": token.group(1), "key": tenant.key, "next": "/ui/x"}
        )
        assert (answer.status_code, answer.headers["location"]) == (303, "/ui/x")
        [cookie] = [
            c for c in answer.headers.get_list("set-cookie") if c.startswith("mailpool_ui=")
        ]
        flags = {part.strip().lower() for part in cookie.split(";")[1:]}
        assert {"httponly", "samesite=strict", "path=/ui"} <= flags
        assert "secure" not in flags  # plain HTTP here; HTTPS adds it
        session_id = cookie.split(";")[0].removeprefix("mailpool_ui=")
        assert tenant.key not in cookie and len(session_id) >= 40

        page = client.get("/ui/")
        csrf = CSRF.search(page.text)
        assert page.status_code == 200 and csrf is not None
        out = client.post("/ui/signout", data={"csrf": csrf.group(1)})
        assert (out.status_code, out.headers["location"]) == (303, "/ui/signin")
    # The old cookie is worth nothing now, even replayed by someone who kept it.
    with httpx.Client(base_url=site.base_url, cookies={"mailpool_ui": session_id}) as replay:
        assert replay.get("/ui/").status_code == 303


def test_a_revoked_key_ends_its_sessions(
    session: tuple[httpx.Client, str], site: Site, tenant: Tenant
) -> None:
    client, _ = session
    assert client.get("/ui/").status_code == 200
    revoke_key(site.database_url, site.data_dir, tenant)
    answer = client.get(f"/ui/identities/{tenant.handle}")
    assert (answer.status_code, answer.headers["location"]) == (303, "/ui/signin?ended=1")
    assert "sign in again" in client.get("/ui/signin?ended=1").text
    # The session is gone, not just refused once.
    assert client.get("/ui/").headers["location"].startswith("/ui/signin?next=")


def test_sign_in_needs_its_own_form_token(site: Site, tenant: Tenant) -> None:
    with httpx.Client(base_url=site.base_url, timeout=30) as client:
        no_cookie = client.post("/ui/signin", data={"csrf": "x", "key": tenant.key})
        assert no_cookie.status_code == 403 and "mailpool_ui=" not in str(no_cookie.headers)
        client.get("/ui/signin")
        wrong = client.post("/ui/signin", data={"csrf": "not-the-token", "key": tenant.key})
        assert wrong.status_code == 403
        assert "mailpool_ui=" not in ";".join(wrong.headers.get_list("set-cookie"))


@pytest.mark.parametrize(
    ("form", "headers"),
    [
        ({}, {}),
        ({"csrf": "forged"}, {}),
        ({"csrf": "<token>"}, {"Origin": "https://evil.example"}),
        ({"csrf": "<token>"}, {"Origin": "null"}),
    ],
    ids=["no token", "wrong token", "foreign origin", "opaque origin"],
)
def test_a_forged_post_is_refused_and_changes_nothing(
    session: tuple[httpx.Client, str],
    tenant: Tenant,
    api: Api,
    form: dict[str, str],
    headers: dict[str, str],
) -> None:
    client, token = session
    sent = api.send(tenant, "morgan@northwind.example")
    data = {k: token if v == "<token>" else v for k, v in form.items()}
    base = f"/ui/identities/{tenant.handle}/conversations/{sent.conv_id}"
    for url, extra in (
        (f"{base}/archive", {}),
        (f"{base}/labels", {"label": "forged"}),
        (f"/ui/identities/{tenant.handle}/sends/{sent.pending_id}/cancel", {}),
        ("/ui/signout", {}),
    ):
        answer = client.post(
            url,
            content=str(httpx.QueryParams({**data, **extra})),
            headers={"Content-Type": "application/x-www-form-urlencoded", **headers},
        )
        assert answer.status_code == 403, url
    stored = api.conversation(tenant, sent.conv_id).conversation
    assert (stored.archived, list(stored.labels)) == (False, [])
    assert api.events_of(tenant, ["email.cancelled"]) == []
    assert client.get("/ui/").status_code == 200  # still signed in


def test_the_right_token_from_our_own_origin_is_accepted(
    session: tuple[httpx.Client, str], site: Site, tenant: Tenant, api: Api
) -> None:
    client, token = session
    sent = api.send(tenant, "morgan@northwind.example")
    answer = client.post(
        f"/ui/identities/{tenant.handle}/conversations/{sent.conv_id}/archive",
        data={"csrf": token},
        headers={"Origin": site.base_url},
    )
    assert answer.status_code == 303
    assert api.conversation(tenant, sent.conv_id).conversation.archived


def test_a_post_without_a_session_is_refused(site: Site, tenant: Tenant, api: Api) -> None:
    sent = api.send(tenant, "morgan@northwind.example")
    with httpx.Client(base_url=site.base_url, timeout=30) as client:
        answer = client.post(
            f"/ui/identities/{tenant.handle}/conversations/{sent.conv_id}/archive",
            data={"csrf": "anything"},
        )
    assert answer.status_code == 403
    assert not api.conversation(tenant, sent.conv_id).conversation.archived


def test_pages_are_never_cached_framed_or_scripted_from_elsewhere(
    session: tuple[httpx.Client, str], tenant: Tenant
) -> None:
    client, _ = session
    for url in ("/ui/", f"/ui/identities/{tenant.handle}", "/ui/signin", "/ui/no-such-page"):
        answer = client.get(url, follow_redirects=True)
        assert answer.headers["cache-control"] == "no-store", url
        assert "script-src 'self'" in answer.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]
        assert answer.headers["x-content-type-options"] == "nosniff"
    missing = client.get("/ui/no-such-page")
    assert missing.status_code == 404 and missing.headers["content-type"].startswith("text/html")
    assert client.get("/ui/static/ui.css").status_code == 200
    assert client.get("/ui").headers["location"] == "/ui/"


def test_signed_out_pages_send_to_sign_in_and_back(site: Site, tenant: Tenant) -> None:
    with httpx.Client(base_url=site.base_url, timeout=30) as client:
        answer = client.get(f"/ui/identities/{tenant.handle}?show=archived")
        assert answer.status_code == 303
        assert answer.headers["location"] == (
            f"/ui/signin?next=%2Fui%2Fidentities%2F{tenant.handle.replace('@', '%40')}"
            "%3Fshow%3Darchived"
        )
        # A next that leaves the dashboard is ignored.
        form = client.get("/ui/signin?next=//evil.example/")
        assert 'name="next" value="/ui/"' in form.text


def _stream(client: httpx.Client, url: str, headers: dict[str, str]) -> tuple[list[int], bool]:
    """The ids of one stream's events up to its caught-up marker, and whether it came."""
    ids: list[int] = []
    with client.stream("GET", url, headers=headers) as answer:
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/event-stream")
        for line in answer.iter_lines():
            if line.startswith("id: "):
                ids.append(int(line.removeprefix("id: ")))
            if line == "event: caught-up":
                return ids, True
    return ids, False


def test_the_event_stream_resumes_after_the_last_event_id(
    session: tuple[httpx.Client, str], tenant: Tenant, api: Api
) -> None:
    client, _ = session
    for n in range(4):
        api.send(tenant, f"lead{n}@northwind.example")
    url = f"/ui/identities/{tenant.handle}/events/stream"
    assert _stream(client, url + "?since=0", {}) == ([1, 2, 3, 4], True)
    # A reconnect sends Last-Event-ID; it wins over the page's ?since=.
    assert _stream(client, url + "?since=0", {"Last-Event-ID": "2"}) == ([3, 4], True)
    assert _stream(client, url, {"Last-Event-ID": "4"}) == ([], True)
    assert client.get(url, headers={"Last-Event-ID": "x"}).status_code == 400
    assert client.get(url, headers={"Last-Event-ID": "99"}).status_code == 409


def test_the_event_stream_needs_a_session(site: Site, tenant: Tenant) -> None:
    with httpx.Client(base_url=site.base_url, timeout=30) as client:
        answer = client.get(f"/ui/identities/{tenant.handle}/events/stream")
    assert answer.status_code == 401


@pytest.mark.parametrize("how", ["serve --no-ui", "serve, MAILPOOL_UI=0", "shim --no-ui"])
def test_no_ui_leaves_ui_a_404(site: Site, tmp_path: Path, migrated_sqlite: Path, how: str) -> None:
    shutil.copyfile(migrated_sqlite, tmp_path / "mailpool.db")
    env = {
        **os.environ,
        "MAILPOOL_DATABASE_URL": f"sqlite:///{tmp_path / 'mailpool.db'}",
        "MAILPOOL_DATA_DIR": str(tmp_path),
        "MAILPOOL_LOG_LEVEL": "WARNING",
    }
    if how == "serve --no-ui":
        args = serve_args(extra=["--no-ui"])
    elif how == "serve, MAILPOOL_UI=0":
        args, env["MAILPOOL_UI"] = serve_args(), "0"
    else:
        args = ["shim", "--grpc-target", site.grpc_target, "--http-port", "0", "--no-ui"]
    with running(args, env, tmp_path / "server.log") as server:
        port = server.ports["HTTP"]
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
            for url in ("/ui/", "/ui/signin", "/ui/static/ui.css", "/ui"):
                answer = client.get(url)
                assert (answer.status_code, answer.json()) == (404, {"error": "not found"}), url
            assert client.get("/openapi.json").status_code == 200  # the API itself is there
