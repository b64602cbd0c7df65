"""DC-09 sequence numbers that survive a crash (SPEC §1, §7).

Each receiver gets its own counter (0001–9999, then 0001 again). An escalation's number is
stored in the journal *before* its message is first sent, so a replay after a crash resends
under the same number and the receiving centre recognises the repeat; a number is never
handed out twice in a row of 9999, crash or not. One journal ``kv`` document per receiver:
``{"last": N, "open": {"<escalation id>": N}}``; an entry leaves ``open`` once the
escalation is final.
"""

from __future__ import annotations

from typing import Any

from gateway.core.ports import KvJournal
from gateway.escalation.dc09.codec import MAX_SEQ
from gateway.journal.store import Batch

PREFIX = "dc09:"


class Sequences:
    """The counters of every receiver; call :meth:`load` once before use."""

    def __init__(self, journal: KvJournal) -> None:
        self._journal = journal
        self._docs: dict[str, dict[str, Any]] = {}

    def load(self) -> None:
        """Read every receiver's counter from the journal."""
        for key, doc in self._journal.kv_all(PREFIX).items():
            if isinstance(doc, dict):
                self._docs[key[len(PREFIX):]] = {"last": int(doc.get("last", 0)),
                                                 "open": dict(doc.get("open") or {})}

    def last(self, receiver: str) -> int:
        return int(self._doc(receiver)["last"])

    async def next(self, receiver: str) -> int:
        """A fresh number (a link test), stored before it is used."""
        doc = self._doc(receiver)
        doc["last"] = doc["last"] % MAX_SEQ + 1
        n = int(doc["last"])
        await self._save(receiver)
        return n

    async def claim(self, receiver: str, escalation_id: str) -> int:
        """The number of ``escalation_id`` at ``receiver``: the stored one on a replay, else
        a fresh one, stored before this returns."""
        doc = self._doc(receiver)
        if escalation_id in doc["open"]:
            return int(doc["open"][escalation_id])
        doc["last"] = doc["last"] % MAX_SEQ + 1
        doc["open"][escalation_id] = int(doc["last"])
        await self._save(receiver)
        return int(doc["last"])

    async def release(self, receiver: str, escalation_id: str) -> None:
        """``escalation_id`` is final (delivered or refused): forget its number."""
        doc = self._doc(receiver)
        if doc["open"].pop(escalation_id, None) is not None:
            await self._save(receiver)

    def _doc(self, receiver: str) -> dict[str, Any]:
        return self._docs.setdefault(receiver, {"last": 0, "open": {}})

    async def _save(self, receiver: str) -> None:
        doc = self._docs[receiver]
        await self._journal.commit(Batch(kv={PREFIX + receiver: {
            "last": doc["last"], "open": dict(doc["open"])}}))
