"""On-disk cache of finished cells: atomic writes, checksums, never trusting a corrupt entry.

A cell's entry is ``<root>/<key>.json`` holding ``{"key", "payload", "sha256"}``. It is written to a
temporary file in the same folder and moved into place with ``os.replace`` (atomic on POSIX), so an
interrupted run leaves either the old entry, the new one, or none: never half of one. On reading,
an entry that is not a readable file, whose JSON does not parse, whose key differs or whose checksum
does not match its payload is *corrupt*; a caller that finds a payload of the wrong shape reports it
*malformed* (:meth:`CellCache.report_malformed`). Either way the entry is removed, counted in
``corrupt``, and the cell recomputed. Temporary files left by an interrupted writer are removed when
the cache is opened (those of a writer that no longer runs: several workers write into one cache at once,
so a temporary file carries its writer's pid).

**Seeing and pruning a cache.** A hit touches the entry (its modification time is the time it was last
read or written), so "not used for N days" is visible on disk. :func:`entries` lists a cache,
:func:`prune` removes the entries whose key is not in a given set (the keys a planned run could read:
``python -m experiments.scaling cache --prune-unused``) or that were not used for a given time, and
:func:`clear` empties it (``--clear``).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

#: result files are readable by others (a cache or a results folder is often shared)
FILE_MODE = 0o644


def _digest(payload) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, allow_nan=True).encode()).hexdigest()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temporary file in the same folder, fsync, rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
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


#: a temporary file older than this is abandoned whoever wrote it (e.g. a worker on another host)
STRAY_AGE = 3600.0


def _abandoned(tmp: Path) -> bool:
    """Whether a temporary file was left by a writer that is gone: its process (named in the file name) no
    longer exists on this host, or it is older than :data:`STRAY_AGE`. Another process may be writing it
    right now (several workers share one cache): such a file is left alone."""
    try:
        if time.time() - tmp.stat().st_mtime > STRAY_AGE:
            return True
    except OSError:
        return False
    parts = tmp.name.split(".")
    pid = next((int(w) for w in reversed(parts[:-2]) if w.isdigit()), None)
    if pid is None:
        return True                       # an old-style name without a pid
    return not _process_runs(pid)


def _process_runs(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie. A worker killed with its parent stays a zombie
    until its new parent reaps it (in a container, perhaps never), and a zombie writes nothing."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:               # someone else's process: assume it is writing
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):         # no /proc (not Linux), or it just exited
        return True
    return state not in ("Z", "X")


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
                if _abandoned(stray):
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
        try:                                       # mark as used (for pruning by age)
            os.utime(p)
        except OSError:
            pass
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


@dataclass(frozen=True)
class Entry:
    key: str
    path: Path
    size: int
    mtime: float

    @property
    def kind(self) -> str:
        """``law`` or ``err`` for the main study's cells, ``cell`` for other studies' cells."""
        head = self.key.split("-", 1)[0]
        return head if head in ("law", "err") else "cell"


def entries(root) -> list[Entry]:
    """Every entry of the cache folder ``root`` (none when it does not exist), sorted by key."""
    root = Path(root)
    if not root.is_dir():
        return []
    out = []
    for p in sorted(root.glob("*.json")):
        try:
            st = p.stat()
        except OSError:
            continue
        out.append(Entry(p.stem, p, st.st_size, st.st_mtime))
    return out


def count(root) -> int:
    """The number of entries of the cache folder ``root``."""
    root = Path(root)
    return sum(1 for _ in root.glob("*.json")) if root.is_dir() else 0


def prune(root, *, keep: set[str] | None = None, older_than: float | None = None) -> list[Entry]:
    """Remove the entries whose key is not in ``keep`` (when given) or that were last used more than
    ``older_than`` seconds ago (when given); return the removed entries."""
    now = time.time()
    removed = []
    for e in entries(root):
        if (keep is not None and e.key not in keep) or (older_than is not None and now - e.mtime > older_than):
            _remove(e.path)
            removed.append(e)
    return removed


def clear(root) -> list[Entry]:
    """Remove every entry (and stray temporary file) of the cache folder ``root``."""
    removed = prune(root, keep=set())
    root = Path(root)
    if root.is_dir():
        for stray in root.glob(".*.tmp"):
            _remove(stray)
    return removed
