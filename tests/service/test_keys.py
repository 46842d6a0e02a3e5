from __future__ import annotations

import re

import pytest

from mailpool_server.service.errors import ApiKeyMalformed, ApiKeyMissing
from mailpool_server.service.keys import display_prefix, generate_key, hash_key, parse_authorization


def test_generated_keys_have_the_contract_shape() -> None:
    key = generate_key()
    assert re.fullmatch(r"sk_live_[0-9a-f]{40}", key)
    assert generate_key() != key
    assert display_prefix(key) == key[:16]
    assert hash_key(key) != key
    assert len(hash_key(key)) == 64


@pytest.mark.parametrize("value", [None, "", "   "])
def test_missing(value: str | None) -> None:
    with pytest.raises(ApiKeyMissing, match=r"^missing api key$"):
        parse_authorization(value)


@pytest.mark.parametrize("value", ["Bearer pk_live_abc", "Basic dXNlcjpwYXNz", "Bearer", "token"])
def test_malformed(value: str) -> None:
    with pytest.raises(ApiKeyMalformed, match=r"^invalid api key format$"):
        parse_authorization(value)


@pytest.mark.parametrize("value", ["Bearer sk_live_abc", "bearer sk_live_abc", "sk_live_abc"])
def test_accepted_shapes(value: str) -> None:
    assert parse_authorization(value) == "sk_live_abc"
