"""How many inputs the property-based suites sent, printed at the end of the run
(CI shows the count, so a suite that silently generated little cannot pass unseen)."""

from __future__ import annotations

from collections import Counter

SENT: Counter[str] = Counter()


def count_input(kind: str) -> None:
    SENT[kind] += 1
