"""The serial node registry: what the gateway remembers about each node across restarts.

The last accepted ``seq`` must survive a restart or a power cut, or replay protection
(SPEC §2) would start over and accept a recorded frame again. So the registry is a small
tinydb file written atomically: a temp file in the same folder, flushed and fsync'd, renamed
over the old one, and the folder fsync'd. A crash at any point leaves either the old or the
new file, never a torn one.

The API is synchronous and small; the asyncio side calls writes through
``asyncio.to_thread``. Records hold a key *reference* (a key file path), never a key.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from collections.abc import Callable, Collection, Iterable, Mapping, MutableMapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from tinydb import TinyDB
from tinydb.storages import Storage
from tinydb.table import Document

from gateway.core.errors import GatewayError
from gateway.core.ports import Clock


class RegistryError(GatewayError, OSError):
    """The registry file could not be read or written."""


@dataclass(frozen=True, slots=True)
class NodeRecord:
    """One enrolled node. Times are unix seconds, battery in millivolts (0 = mains)."""

    node: int
    device: str
    key_ref: str | None = None  # path of the node's key file; the key itself is never stored
    last_seq: int | None = None  # last accepted seq, None until the first frame
    last_seen: float | None = None
    batt_mv: int | None = None
    enrolled_at: float = 0.0
    low_battery: bool = False  # a low_battery event was raised and the battery has not recovered

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> NodeRecord:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in doc.items() if k in names})


@dataclass(frozen=True, slots=True)
class PendingNode:
    """An unknown node heard sending ``BOOT``, offered for enrolment (learn mode)."""

    node: int
    first_seen: float
    last_seen: float
    batt_mv: int = 0
    boots: int = 1


class AtomicJSONStorage(Storage):
    """A tinydb storage that never leaves a torn file (write temp, fsync, rename, fsync dir).

    It is the only writer of its file, so it keeps what it last read or wrote in memory and
    hands out copies of that (copying flat documents is far cheaper than parsing the file)
    instead of re-reading the disk on every query. The copy kept is replaced only once a
    write is on disk, so a failed write leaves memory and file alike.
    """

    def __init__(self, path: str | os.PathLike[str], mode: int = 0o600) -> None:
        self._path = Path(path)
        self._mode = mode
        self._data: dict[str, dict[str, Any]] | None = None

    def read(self) -> dict[str, dict[str, Any]] | None:
        if self._data is None:
            try:
                text = self._path.read_text(encoding="utf-8")
            except FileNotFoundError:
                return None
            except OSError as exc:
                raise RegistryError(f"{self._path}: cannot read: {exc}") from exc
            if not text.strip():
                return None
            try:
                self._data = json.loads(text)
            except ValueError as exc:
                raise RegistryError(f"{self._path}: not valid JSON: {exc}") from exc
        return _copy_tables(self._data)

    def write(self, data: dict[str, dict[str, Any]]) -> None:
        text = json.dumps(data, separators=(",", ":"), sort_keys=True)
        try:
            self._write_atomically(text)
        except OSError as exc:
            raise RegistryError(f"{self._path}: cannot write: {exc}") from exc
        self._data = _copy_tables(data)

    def _write_atomically(self, text: str) -> None:
        folder = self._path.parent
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self._path.name}.", suffix=".tmp", dir=folder)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(text)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(tmp, self._mode)
            os.replace(tmp, self._path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def close(self) -> None:
        self._data = None


def _copy_tables(data: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """A copy of tinydb's ``{table: {doc_id: document}}`` down to the documents, which tinydb
    changes in place. The registry's documents are flat (fields of :class:`NodeRecord` and
    :class:`PendingNode`), so their values need no copy."""
    return {name: {doc_id: dict(doc) for doc_id, doc in table.items()}
            for name, table in data.items()}


class Registry:
    """Enrolled nodes and pending (learn mode) nodes, in one atomically written file.

    Opening reads the file; every change rewrites it before returning. Thread-safe, so it
    can be called from ``asyncio.to_thread`` workers.
    """

    def __init__(self, path: str | os.PathLike[str], clock: Clock) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._db = TinyDB(path, storage=AtomicJSONStorage)
        self._nodes = self._db.table("nodes", cache_size=0)
        self._pending = self._db.table("pending", cache_size=0)

    def get(self, node: int) -> NodeRecord | None:
        with self._lock:
            doc = self._nodes.get(doc_id=node)
        return NodeRecord.from_doc(dict(doc)) if isinstance(doc, dict) else None

    def records(self) -> dict[int, NodeRecord]:
        """Every enrolled node by node id."""
        with self._lock:
            docs = self._nodes.all()
        return {int(d["node"]): NodeRecord.from_doc(dict(d)) for d in docs}

    def enroll(self, node: int, device: str, key_ref: str | None = None) -> NodeRecord:
        """Enrol (or re-point) ``node``; its replay state is kept if it was known before."""
        with self._lock:
            old = self._nodes.get(doc_id=node)
            if isinstance(old, dict):
                base = NodeRecord.from_doc(dict(old))
                record = NodeRecord(**{**asdict(base), "device": device, "key_ref": key_ref})
            else:
                record = NodeRecord(node, device, key_ref, enrolled_at=self._clock.wall())
            self._nodes.upsert(Document(asdict(record), doc_id=node))
            if self._pending.contains(doc_id=node):
                self._pending.remove(doc_ids=[node])
        return record

    def save(self, record: NodeRecord) -> None:
        """Persist ``record`` (replacing the stored one for its node)."""
        self.save_many([record])

    def save_many(self, records: Iterable[NodeRecord]) -> None:
        """Persist several records; at most two file writes (updates, then inserts)."""
        docs = {r.node: asdict(r) for r in records}
        if not docs:
            return
        with self._lock:
            # one pass over the table replaces every known node's document
            replaced = set(self._nodes.update(_replacing_from(docs), _NodeIn(docs.keys())))  # type: ignore[arg-type]
            inserts = [Document(d, doc_id=n) for n, d in docs.items() if n not in replaced]
            if inserts:
                self._nodes.insert_multiple(inserts)

    def forget(self, node: int) -> None:
        with self._lock:
            if self._nodes.contains(doc_id=node):
                self._nodes.remove(doc_ids=[node])

    def note_pending(self, node: int, batt_mv: int = 0) -> PendingNode:
        """Remember an unknown node that sent ``BOOT``, so ``enroll`` can offer it."""
        now = self._clock.wall()
        with self._lock:
            old = self._pending.get(doc_id=node)
            if isinstance(old, dict):
                prev = PendingNode(**dict(old))
                pending = PendingNode(node, prev.first_seen, now, batt_mv, prev.boots + 1)
            else:
                pending = PendingNode(node, now, now, batt_mv)
            self._pending.upsert(Document(asdict(pending), doc_id=node))
        return pending

    def pending(self) -> list[PendingNode]:
        with self._lock:
            docs = self._pending.all()
        return sorted((PendingNode(**dict(d)) for d in docs), key=lambda p: p.node)

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _replacing_from(
    docs: Mapping[int, dict[str, Any]],
) -> Callable[[MutableMapping[Any, Any]], None]:
    """A tinydb update operation that replaces a node's whole document by ``docs[node]``."""

    def apply(doc: MutableMapping[Any, Any]) -> None:
        new = docs[doc["node"]]
        doc.clear()
        doc.update(new)

    return apply


class _NodeIn:
    """A tinydb condition: the document is one of ``nodes`` (a set lookup, not a query per
    node, so replacing n of m documents costs one pass over m)."""

    def __init__(self, nodes: Collection[int]) -> None:
        self._nodes = frozenset(nodes)

    def __call__(self, doc: Mapping[str, Any]) -> bool:
        return doc.get("node") in self._nodes

    def __hash__(self) -> int:
        return hash(self._nodes)
