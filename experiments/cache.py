"""On-disk cache of finished cells: atomic writes, checksums, never trusting a corrupt entry.

A cell's entry is ``<root>/<key>.json`` holding ``{"key", "payload", "sha256"}``. It is written to a
temporary file in the same folder and moved into place with ``os.replace`` (atomic on POSIX), so an
interrupted run leaves either the old entry, the new one, or none: never half of one. On reading,
an entry whose JSON does not parse, whose key differs or whose checksum does not match its payload
is reported as corrupt, deleted and recomputed.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path


def _digest(payload) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, allow_nan=True).encode()).hexdigest()


def atomic_write_text(path: Path, text: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


class CellCache:
    def __init__(self, root):
        self.root = Path(root)
        self.corrupt: list[str] = []

    def path(self, key: str) -> Path:
        return self.root / f"{key}.json"

    def get(self, key: str):
        """The cached payload, or None when absent or corrupt (corrupt entries are removed and logged)."""
        p = self.path(key)
        if not p.exists():
            return None
        try:
            entry = json.loads(p.read_text())
            ok = entry.get("key") == key and entry.get("sha256") == _digest(entry.get("payload"))
        except (ValueError, AttributeError, OSError):
            ok = False
        if not ok:
            self.corrupt.append(key)
            p.unlink(missing_ok=True)
            return None
        return entry["payload"]

    def put(self, key: str, payload) -> None:
        entry = {"key": key, "payload": payload, "sha256": _digest(payload)}
        atomic_write_text(self.path(key), json.dumps(entry, sort_keys=True, allow_nan=True))
