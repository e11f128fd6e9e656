"""The consumer's in-memory cache of customer facts between polls (see :class:`FactsCache`)."""

from __future__ import annotations

import uuid
from collections import OrderedDict

from segmentation.domain.facts import CustomerFacts


class FactsCache:
    """The facts of recently projected customers, kept in the consumer process between polls.

    An entry is valid only while the customer's row still carries the ``facts_token`` it was stored
    with: the projector writes a new token with every change of facts, so facts changed by another
    consumer instance, or a transaction that rolled back after the entry was stored, make the entry
    stale and the facts are loaded from the database again. Entries are taken out while a poll uses
    them (no copies) and put back after it; least recently used entries beyond ``size`` are dropped.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: OrderedDict[str, tuple[uuid.UUID, CustomerFacts]] = OrderedDict()
        self.hits = self.misses = 0

    def take(self, customer_id: str, token: uuid.UUID | None) -> CustomerFacts | None:
        entry = self._entries.pop(customer_id, None)
        if entry is None or token is None or entry[0] != token:
            self.misses += 1
            return None
        self.hits += 1
        return entry[1]

    def put(self, customer_id: str, token: uuid.UUID, facts: CustomerFacts) -> None:
        facts.mark_saved()
        self._entries[customer_id] = (token, facts)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)
