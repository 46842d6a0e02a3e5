"""Property: nothing a client sends makes the shim answer 5xx, and every error body
has the contract's shape. Runs against a real `mailpool serve` process."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz_counts import count_input
from tests.processes import run_cli, serve
from tests.rest import openapi_check

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[httpx.Client, str, str]]:
    folder: Path = tmp_path_factory.mktemp("fuzz")
    env = {
        **os.environ,
        "MAILPOOL_DATABASE_URL": f"sqlite:///{folder / 'f.db'}",
        "MAILPOOL_LOG_LEVEL": "ERROR",
    }
    run_cli(env, "admin", "org", "create", "fuzz")
    key = run_cli(env, "admin", "key", "create", "--org", "fuzz").strip()
    run_cli(
        env,
        "admin",
        "identity",
        "create",
        "--org",
        "fuzz",
        "--handle",
        "f@mailpool.local",
        "--tier",
        "scale",
        "--warmup-stage",
        "5",
    )
    with (
        serve(env, dispatcher=False) as ports,
        httpx.Client(base_url=f"http://127.0.0.1:{ports['HTTP']}", timeout=30) as client,
    ):
        yield client, key, "f@mailpool.local"


# Header values that can go on the wire: latin-1, no CR/LF, no surrounding space.
header_text = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"),
    max_size=300,
).map(lambda value: value.strip(" \t"))
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=50),
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5)
    ),
    max_leaves=12,
)
FIELDS = [
    "to",
    "subject",
    "text",
    "html",
    "convId",
    "inReplyTo",
    "references",
    "labels",
    "noReplyEventAfter",
]
plausible = st.fixed_dictionaries(
    {},
    optional={
        "to": st.one_of(st.emails(), st.lists(st.emails(), max_size=3), json_values),
        "subject": st.one_of(st.text(max_size=30), json_values),
        "text": st.one_of(st.text(max_size=30), json_values),
        "html": st.one_of(st.text(max_size=30), json_values),
        "convId": st.one_of(st.from_regex(r"conv_[0-9a-f]{1,16}", fullmatch=True), json_values),
        "inReplyTo": st.one_of(st.just("<a@b.example>"), json_values),
        "references": st.one_of(st.lists(st.just("<r@b.example>")), json_values),
        "labels": st.one_of(st.lists(st.text(max_size=70), max_size=25), json_values),
        "noReplyEventAfter": st.one_of(
            st.sampled_from(["30m", "1.5h", "3 days", "0", "99999999999"]), json_values
        ),
    },
)
bodies = st.one_of(
    plausible.map(lambda d: json.dumps(d).encode()),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=200),
    st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass")),
)


def _check(response: httpx.Response, method: str) -> None:
    count_input("HTTP")
    assert response.status_code < 500, (response.status_code, response.text)
    body = response.json()
    if response.status_code in (200, 429):
        openapi_check.check(method, response.request.url.path, response.status_code, body)
    else:
        assert set(body) <= {"error", "details"} and isinstance(body["error"], str), body
        assert isinstance(body.get("details", {}), dict)


FUZZ = settings(
    max_examples=1500,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@FUZZ
@given(
    body=bodies,
    content_type=st.sampled_from(
        [
            "application/json",
            "application/json; charset=utf-8",
            "text/plain",
            "",
            "APPLICATION/JSON",
        ]
    )
    | header_text,
    idempotency_key=st.none() | header_text,
    authorization=st.sampled_from(["good", "none", "Bearer sk_live_nope", "Bearer pk_x"])
    | header_text,
    handle=st.sampled_from(["f@mailpool.local", "f%40mailpool.local"]) | st.text(max_size=40),
)
def test_send_never_fails_the_server(
    server: tuple[httpx.Client, str, str],
    body: bytes,
    content_type: str,
    idempotency_key: str | None,
    authorization: str,
    handle: str,
) -> None:
    client, key, _ = server
    headers = {"Content-Type": content_type}
    if authorization == "good":
        headers["Authorization"] = f"Bearer {key}"
    elif authorization != "none":
        headers["Authorization"] = authorization
    if idempotency_key is not None:
        headers["Idempotency-Key"] = idempotency_key
    path = f"/v1/identities/{quote(handle, safe='@%')}/send"
    raw_headers = {name.encode(): value.encode("latin-1") for name, value in headers.items()}
    _check(client.post(path, content=body, headers=raw_headers), "POST")


query_values = st.one_of(
    st.text(max_size=30),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.sampled_from(["true", "false", "email.queued,email.sent", "", "0", "200", "201"]),
)


@FUZZ
@given(
    endpoint=st.sampled_from(
        [
            "conversations",
            "events",
            "conversations/conv_abc",
            "conversations/xyz",
            "conversations/conv_",
        ]
    ),
    query=st.dictionaries(
        st.sampled_from(
            [
                "since",
                "until",
                "types",
                "limit",
                "cursor",
                "archived",
                "with",
                "withDomain",
                "other",
            ]
        ),
        query_values,
        max_size=5,
    ),
    timeout=st.none() | st.sampled_from(["0", "5", "-1", "25001", "x"]),
)
def test_reads_never_fail_the_server(
    server: tuple[httpx.Client, str, str],
    endpoint: str,
    query: dict[str, str],
    timeout: str | None,
) -> None:
    client, key, handle = server
    params: dict[str, Any] = dict(query)
    if timeout is not None:
        params["timeoutMs"] = timeout
    response = client.get(
        f"/v1/identities/{handle}/{endpoint}",
        params=params,
        headers={"Authorization": f"Bearer {key}"},
    )
    _check(response, "GET")
