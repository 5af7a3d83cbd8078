"""Supervise requests on disk: what an agent asked, and what its operator answered.

One JSON file per request in the bottle's egress directory (`requests/<id>.json`,
mode 0600, outside anything the agent can reach). The egress sidecar creates them and
reads the answers back for the agent; `bot-bottle grant` / `deny` write the answers.
Each write is a whole file renamed into place, so a reader never sees half a record.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import secrets
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Literal

from bot_bottle.policy.supervise import Ask

Status = Literal["pending", "granted", "denied"]
ID_RE = re.compile(r"\Ar-[0-9a-f]{8}\Z")  # \Z: `$` also takes a trailing newline
MAX_PENDING = 20  # per bottle: a flood of asks must not fill the operator's list or disk


@dataclass(frozen=True)
class AskRecord:
    id: str
    bottle: str
    ask: Ask
    created: float
    status: Status = "pending"
    answer: str = ""  # the deny reason, or the operator's reply to a question
    decided_by: str = ""
    decided_at: float = 0.0
    expires: float = 0.0  # for a granted route: when the grant ends (0: with the bottle)

    def to_json(self) -> str:
        body = asdict(self)
        body["ask"] = self.ask.to_dict()
        return json.dumps(body, indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> AskRecord:
        raw: dict[str, Any] = json.loads(text)
        a = raw.pop("ask")
        ask = Ask(kind=a["kind"], reason=a["reason"], host=a["host"], path=a["path"],
                  methods=tuple(a["methods"]), question=a["question"],
                  port=int(a.get("port", 443)))  # fmt: skip
        return cls(ask=ask, **raw)

    def view(self) -> dict[str, Any]:
        """What the agent sees when it polls: its answer, never anything else."""
        return {"id": self.id, "status": self.status, "answer": self.answer,
                "expires": self.expires, "ask": self.ask.to_dict()}  # fmt: skip


class RequestDir:
    """The requests of one bottle."""

    def __init__(self, path: Path, bottle: str) -> None:
        self.path = path
        self.bottle = bottle

    def create(self, ask: Ask, now: float | None = None) -> AskRecord:
        """Record a new pending request; raises ValueError when too many are pending."""
        self.path.mkdir(parents=True, exist_ok=True, mode=0o700)
        if sum(1 for r in self.all() if r.status == "pending") >= MAX_PENDING:
            raise ValueError(f"{MAX_PENDING} requests are already waiting for the operator")
        while True:
            rec = AskRecord(f"r-{secrets.token_hex(4)}", self.bottle, ask, now or time.time())
            try:
                _write(self.path / f"{rec.id}.json", rec.to_json(), exclusive=True)
            except FileExistsError:
                continue
            return rec

    def get(self, rid: str) -> AskRecord | None:
        if not ID_RE.match(rid):
            return None
        try:
            return AskRecord.from_json((self.path / f"{rid}.json").read_text())
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def all(self) -> list[AskRecord]:
        out = []
        for p in sorted(self.path.glob("r-*.json")) if self.path.is_dir() else []:
            rec = self.get(p.stem)
            if rec is not None:
                out.append(rec)
        return sorted(out, key=lambda r: r.created)

    @contextlib.contextmanager
    def deciding(self, rid: str) -> Iterator[AskRecord | None]:
        """Hold the record's lock while the operator's answer is written."""
        lock = self.path / f"{rid}.lock"
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield self.get(rid)
        finally:
            os.close(fd)

    def decide(self, rec: AskRecord, **changes: Any) -> AskRecord:
        new = replace(rec, decided_at=time.time(), **changes)
        _write(self.path / f"{rec.id}.json", new.to_json())
        return new


def _write(path: Path, text: str, exclusive: bool = False) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    if exclusive:
        try:
            os.link(tmp, path)  # fails if the id is taken: never overwrite a request
        finally:
            tmp.unlink()
    else:
        os.replace(tmp, path)
