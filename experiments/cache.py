"""On-disk cache of finished cells: atomic writes, checksums, never trusting a corrupt entry.

A cell's entry is ``<root>/<key>.json`` holding ``{"key", "payload", "sha256"}``. It is written to a
temporary file in the same folder and moved into place with ``os.replace`` (atomic on POSIX), so an
interrupted run leaves either the old entry, the new one, or none: never half of one. On reading,
an entry that is not a readable file, whose JSON does not parse, whose key differs or whose checksum
does not match its payload is *corrupt*; a caller that finds a payload of the wrong shape reports it
*malformed* (:meth:`CellCache.report_malformed`). Either way the entry is removed, counted in
``corrupt``, and the cell recomputed. Temporary files left by an interrupted writer are removed when
the cache is opened.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

#: result files are readable by others (a cache or a results folder is often shared)
FILE_MODE = 0o644


def _digest(payload) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, allow_nan=True).encode()).hexdigest()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temporary file in the same folder, fsync, rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # the writer's pid in the name: a cache opened by another process removes only a dead writer's leftovers
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def _writer_alive(tmp: Path) -> bool:
    """Whether the process that is writing temporary file ``tmp`` (its pid is in the name) still runs."""
    parts = tmp.name.split(".")
    try:
        pid = int(parts[-3])
    except (IndexError, ValueError):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove(p: Path) -> None:
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p, ignore_errors=True)
    else:
        p.unlink(missing_ok=True)


class CellCache:
    def __init__(self, root):
        self.root = Path(root)
        self.corrupt: list[str] = []
        self.hits = 0
        self.writes = 0
        if self.root.is_dir():
            for stray in self.root.glob(".*.tmp"):   # left by a writer that was killed mid-write
                if not _writer_alive(stray):
                    _remove(stray)

    def path(self, key: str) -> Path:
        return self.root / f"{key}.json"

    def get(self, key: str):
        """The cached payload, or None when absent or corrupt (corrupt entries are removed and counted)."""
        p = self.path(key)
        if not p.exists() and not p.is_symlink():
            return None
        try:
            entry = json.loads(p.read_text())
            ok = (isinstance(entry, dict) and entry.get("key") == key
                  and entry.get("sha256") == _digest(entry.get("payload")))
        except (ValueError, AttributeError, OSError, UnicodeDecodeError, TypeError):
            ok = False
        if not ok:
            self.corrupt.append(key)
            _remove(p)
            return None
        self.hits += 1
        return entry["payload"]

    def report_malformed(self, key: str) -> None:
        """A caller found a checksummed payload of the wrong shape: count it as corrupt and remove it."""
        self.corrupt.append(key)
        self.hits -= 1
        _remove(self.path(key))

    def put(self, key: str, payload) -> None:
        entry = {"key": key, "payload": payload, "sha256": _digest(payload)}
        p = self.path(key)
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        atomic_write_text(p, json.dumps(entry, sort_keys=True, allow_nan=True))
        self.writes += 1
