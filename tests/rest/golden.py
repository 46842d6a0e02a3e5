"""Golden contract cases: each file in golden/ is a scenario, a list of exchanges.

A request may use {key}, {handle}, {conv} (the first convId a response returned) and
{otherConv} (a conversation of another org's identity) and {pending} (the first
pendingId a response returned). Responses are compared after
the values that differ between runs (random ids, Message-IDs) are replaced by
placeholders; times are fixed by the fake clock. Run with GOLDEN_UPDATE=1 to rewrite
the expected responses (then read the diff: it is the contract).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("GOLDEN_UPDATE") == "1"

_VOLATILE = [
    (re.compile(r"\bconv_[0-9a-f]{16}\b"), "conv_<id>"),
    (re.compile(r"\bpsn_[0-9a-f]{16}\b"), "psn_<id>"),
    (re.compile(r"\bacc_[0-9a-f]{16}\b"), "acc_<id>"),
    (re.compile(r"\bmsg_[0-9a-f]{16}\b"), "msg_<id>"),
    (re.compile(r"\bevt_[0-9A-HJKMNP-TV-Z]{26}\b"), "evt_<ulid>"),
    (re.compile(r"<[0-9a-f]{24}@"), "<msgid@"),
]


def normalize(value: Any) -> Any:
    if isinstance(value, str):
        for pattern, placeholder in _VOLATILE:
            value = pattern.sub(placeholder, value)
        return value
    if isinstance(value, list):
        return [normalize(v) for v in value]
    if isinstance(value, dict):
        return {k: normalize(v) for k, v in value.items()}
    return value


def scenarios() -> list[str]:
    return sorted(p.stem for p in GOLDEN.glob("*.json"))


def load(name: str) -> dict[str, Any]:
    return json.loads((GOLDEN / f"{name}.json").read_text())  # type: ignore[no-any-return]


def save(name: str, scenario: dict[str, Any]) -> None:
    (GOLDEN / f"{name}.json").write_text(json.dumps(scenario, indent=2, ensure_ascii=False) + "\n")
