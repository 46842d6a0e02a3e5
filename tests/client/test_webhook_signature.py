"""mailpool_client.verify_signature against signatures the server's signer makes."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from mailpool_client import InvalidSignature, check_signature, verify_signature
from mailpool_server.service.webhooks import new_secret, signature

BODY = b'{"id":"evt_1","seq":1,"type":"email.queued"}'
T = 1_777_276_800


def test_a_server_signature_verifies_with_its_secret_only() -> None:
    secret = new_secret()
    header = signature(secret, T, BODY)
    assert verify_signature(secret, header, BODY, now=T + 10)
    assert not verify_signature(new_secret(), header, BODY, now=T)
    assert not verify_signature(secret, header, BODY + b" ", now=T)


def test_the_signed_string_is_t_dot_raw_body_keyed_with_the_whole_secret() -> None:
    secret = "whsec_test"
    mac = hmac.new(b"whsec_test", f"{T}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert signature(secret, T, BODY) == f"t={T},v1={mac}"


def test_any_of_several_v1_values_may_match_and_unknown_schemes_are_ignored() -> None:
    secret = new_secret()
    good = signature(secret, T, BODY).split(",")[1]
    header = f"t={T}, v0=abc, v1={'0' * 64}, {good}"
    assert verify_signature(secret, header, BODY, now=T)


@pytest.mark.parametrize(
    ("header", "now", "reason"),
    [
        ("v1=abc", T, "malformed"),
        (f"t={T}", T, "malformed"),
        ("t=soon,v1=abc", T, "malformed"),
        (f"t={T},v1={'0' * 64}", T, "mismatch"),
        (f"t={T},v1=zz\u00e9", T, "mismatch"),
    ],
)
def test_a_bad_header_says_why(header: str, now: int, reason: str) -> None:
    with pytest.raises(InvalidSignature) as raised:
        check_signature("whsec_x", header, BODY, now=now)
    assert raised.value.reason == reason
    assert not verify_signature("whsec_x", header, BODY, now=now)


def test_a_signature_older_or_newer_than_the_tolerance_is_refused() -> None:
    secret = new_secret()
    header = signature(secret, T, BODY)
    assert verify_signature(secret, header, BODY, now=T + 300)
    with pytest.raises(InvalidSignature) as raised:
        check_signature(secret, header, BODY, now=T + 301)
    assert raised.value.reason == "expired"
    assert not verify_signature(secret, header, BODY, now=T - 301)
    assert verify_signature(secret, header, BODY, tolerance_s=3600, now=T + 3000)
