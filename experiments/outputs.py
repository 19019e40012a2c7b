"""The output set of a run: tables, figures and metadata that a reader never sees mixed with another run's.

**Staging and the manifest.** A run writes its whole output set (the run's tables, the analysis tables,
``tables.md``, the figures, ``metadata.json``) into a staging folder ``OUT/.staging-<pid>/`` first. Then:

1. if every staged file is byte-identical to the file already in place (``metadata.json`` aside) and the
   folder's manifest verifies, nothing is touched (so ``git status`` stays clean after reproducing the
   committed numbers) and the staging folder is removed;
2. otherwise ``OUT/MANIFEST.json`` is removed *first*, each staged file is moved into place with
   ``os.replace`` (atomic per file), files listed by the old manifest that the new set does not contain
   are removed, and the new manifest, listing every file of the set with its SHA-256, is written *last*.

A crash at any point leaves either the old set with its manifest, or files without a manifest (or with
a manifest that does not match them): :func:`verify` says so, the ``report`` command refuses such a
folder (``--force`` overrides), and :func:`require_complete` lets any reader do the same. Signals are
held back (not lost) while step 2 runs. Leftover staging folders of killed runs are removed by the next
run. Every file is written with mode 0644 (readable by others). Figures live in their own folder; the
manifest lists them by their path relative to ``OUT``.

**Whose folder.** ``metadata.json`` records the profile (and the study) that wrote a folder;
:func:`check_owner` refuses a run of another profile into it unless forced, so ``--quick`` never
overwrites the committed default results.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import tempfile
import time
from pathlib import Path

from experiments.cache import FILE_MODE, atomic_write_bytes, atomic_write_text

MANIFEST = "MANIFEST.json"
METADATA = "metadata.json"
STAGING_PREFIX = ".staging-"


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def check_writable_dir(path, option: str) -> Path:
    """``path`` is, or can be created as, a folder this process can write into; else a ValueError naming
    ``option``. Nothing is created (a probe file in the nearest existing folder is removed at once)."""
    if path is None or str(path).strip() == "":
        raise ValueError(f"{option} must name a folder, got an empty string")
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise ValueError(f"{option} {str(path)!r} is a file, not a folder")
    probe = p
    while not probe.exists():
        if probe.is_symlink():
            raise ValueError(f"{option} {str(path)!r}: {str(probe)!r} is a broken symbolic link")
        parent = probe.parent
        if parent == probe:
            break
        probe = parent
    if probe.exists() and not probe.is_dir():
        raise ValueError(f"{option} {str(path)!r} lies below {str(probe)!r}, which is a file")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise ValueError(f"{option} {str(path)!r}: cannot write into {str(probe)!r} (permission denied)")
    try:                                  # os.access says yes to root everywhere: try a (removed) probe file
        fd, tmp = tempfile.mkstemp(dir=probe, prefix=".write-probe-")
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        raise ValueError(f"{option} {str(path)!r}: cannot write into {str(probe)!r} "
                         f"({exc.strerror or type(exc).__name__})") from None
    return p


def read_json(path: Path) -> dict | None:
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


def check_owner(out: Path, profile: str, study: str, *, force: bool) -> None:
    """Refuse to write a run of ``profile`` (and ``study``) into a folder that holds another profile's or
    study's results (unless ``force``)."""
    meta = read_json(Path(out) / METADATA)
    if meta is None or force:
        return
    other_profile = meta.get("profile")
    other_study = meta.get("study", "scaling")
    if other_study != study:
        raise ValueError(f"{out} holds the results of study {other_study!r}; choose another --out "
                         f"(or replace them with --force)")
    if other_profile is not None and other_profile != profile:
        raise ValueError(f"{out} holds results of the {other_profile!r} profile, not {profile!r}; choose another "
                         f"--out (or replace them with --force)")


def remove_stale_staging(out: Path) -> None:
    """Remove staging folders left by killed runs (their process no longer exists)."""
    out = Path(out)
    if not out.is_dir():
        return
    for p in out.glob(f"{STAGING_PREFIX}*"):
        try:
            pid = int(p.name[len(STAGING_PREFIX):])
        except ValueError:
            pid = -1
        if pid > 0 and pid != os.getpid():
            try:
                os.kill(pid, 0)
                continue                   # still running (another run into the same folder)
            except ProcessLookupError:
                pass
            except PermissionError:
                continue
        if pid != os.getpid():
            shutil.rmtree(p, ignore_errors=True)


def verify(out) -> list[str]:
    """Problems of the output set in ``out``: [] when its manifest lists files that all match."""
    out = Path(out)
    man = read_json(out / MANIFEST)
    if man is None or not isinstance(man.get("files"), dict):
        return [f"{out} has no readable {MANIFEST} (no run finished writing there, or one was interrupted "
                f"while writing)"]
    problems = []
    for rel, digest in sorted(man["files"].items()):
        p = out / rel
        if not p.is_file():
            problems.append(f"{rel} is missing")
        elif sha256(p) != digest:
            problems.append(f"{rel} does not match the manifest (written by another run)")
    return problems


def require_complete(out, *, unmanaged_ok: bool = False) -> None:
    """Raise ValueError when ``out`` is not one complete output set (for readers of result folders).

    ``unmanaged_ok``: also accept a folder that no run of this pipeline manages, i.e. one with neither a
    ``MANIFEST.json`` nor a staging folder (tables of the layout before manifests, or tables written by
    hand or by tests), or that holds no file yet (the first run into it is still computing). A folder
    with files and a staging folder but no manifest is refused: a run removes the manifest before it
    moves its staged files in, so that is a run killed while writing there (or one writing there now).
    A manifest that does not verify is always refused."""
    out = Path(out)
    if unmanaged_ok and not (out / MANIFEST).exists():
        staging = sorted(p.name for p in out.glob(f"{STAGING_PREFIX}*") if p.is_dir())
        files = [p for p in out.iterdir() if p.is_file() and not p.name.startswith(".")] if out.is_dir() else []
        if not staging or not files:
            return
        raise ValueError(f"{out} is not a complete output set: it has no {MANIFEST} but holds the staging "
                         f"folder {staging[0]} (a run was killed while writing there, or is writing there now); "
                         f"rerun the command that wrote it")
    problems = verify(out)
    if problems:
        raise ValueError(f"{out} is not a complete output set: {problems[0]}"
                         + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else "")
                         + "; rerun the command that wrote it")


def require_in_set(out, rel: str) -> None:
    """Raise ValueError when ``out`` has a manifest that does not list ``rel`` although the file is there
    (a table left by an older run, which a reader must not mix with the set); see :func:`stray_files`."""
    man = read_json(Path(out) / MANIFEST)
    if man is None or not isinstance(man.get("files"), dict):
        return
    if rel not in man["files"] and (Path(out) / rel).exists():
        raise ValueError(f"{Path(out) / rel} is not part of the output set in {out} (its {MANIFEST} does not "
                         f"list it: left by an older run); remove it or rerun the command that wrote {out}")


@contextlib.contextmanager
def signals_deferred():
    """Hold SIGINT/SIGTERM back while the block runs; they are delivered when it ends."""
    sigs = {signal.SIGINT, signal.SIGTERM}
    try:
        old = signal.pthread_sigmask(signal.SIG_BLOCK, sigs)
    except (AttributeError, ValueError, OSError):  # pragma: no cover - not POSIX
        yield
        return
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _move(src: Path, dst: Path) -> None:
    os.replace(src, dst)                 # atomic on POSIX (same file system: the stage is inside OUT)


class OutputSet:
    """A run's output set, staged in ``OUT/.staging-<pid>/`` and committed at once (module docstring)."""

    def __init__(self, out, figures):
        self.out, self.figures = Path(out), Path(figures)
        self.out.mkdir(parents=True, exist_ok=True)
        remove_stale_staging(self.out)
        self.stage = self.out / f"{STAGING_PREFIX}{os.getpid()}"
        if self.stage.exists():
            shutil.rmtree(self.stage)
        self.stage_figures = self.stage / "_figures"
        self.stage_figures.mkdir(parents=True)

    # ---- writing into the stage
    def write_text(self, name: str, text: str) -> None:
        atomic_write_text(self.stage / name, text)

    def discard(self) -> None:
        shutil.rmtree(self.stage, ignore_errors=True)

    def _staged(self) -> dict[Path, Path]:
        """``{staged file: its place}`` (tables and metadata into OUT, figures into the figure folder)."""
        moves = {}
        for p in sorted(self.stage.rglob("*")):
            if not p.is_file() or p.name.startswith("."):
                continue
            rel = p.relative_to(self.stage)
            if rel.parts[0] == "cache":         # cached cells are not results (git-ignored): never in the set
                continue
            if rel.parts[0] == "_figures":
                moves[p] = self.figures / Path(*rel.parts[1:])
            else:
                moves[p] = self.out / rel
        return moves

    def _rel(self, place: Path) -> str:
        return os.path.relpath(place, self.out)

    def unchanged(self) -> bool:
        """Whether the staged set equals what ``OUT`` holds (metadata aside) and ``OUT`` verifies."""
        old = read_json(self.out / MANIFEST)
        if old is None or verify(self.out):
            return False
        moves = self._staged()
        new_rel = {self._rel(place) for place in moves.values()} | {METADATA}
        if new_rel != set(old.get("files", {})):
            return False
        for src, place in moves.items():
            if place.name == METADATA and place.parent == self.out:
                continue
            if not place.is_file() or place.read_bytes() != src.read_bytes():
                return False
        return True

    def commit(self, metadata: dict | str) -> str:
        """Put the staged set in place (``"written"``) or leave ``OUT`` untouched when nothing changed
        (``"unchanged"``); the staging folder is removed either way. ``metadata``: a dict (written as JSON)
        or the exact text of ``metadata.json``."""
        try:
            if self.unchanged():
                return "unchanged"
            text = metadata if isinstance(metadata, str) else json.dumps(metadata, indent=2) + "\n"
            self.write_text(METADATA, text)
            moves = self._staged()
            old = read_json(self.out / MANIFEST) or {}
            files = {}
            with signals_deferred():
                (self.out / MANIFEST).unlink(missing_ok=True)
                for src, place in moves.items():
                    place.parent.mkdir(parents=True, exist_ok=True)
                    os.chmod(src, FILE_MODE)
                    _move(src, place)
                    files[self._rel(place)] = sha256(place)
                for rel in set(old.get("files", {})) - set(files):
                    target = (self.out / rel)
                    with contextlib.suppress(OSError):
                        if target.is_file():
                            target.unlink()
                manifest = {"written": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "files": files}
                text = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
                atomic_write_bytes(self.out / MANIFEST, text.encode())
            return "written"
        finally:
            self.discard()


def stray_files(out, names_glob: str = "*.csv") -> list[str]:
    """Files in ``out`` matching ``names_glob`` that its manifest does not list (e.g. tables of an older
    layout): reported to the user, never removed."""
    man = read_json(Path(out) / MANIFEST) or {}
    listed = set(man.get("files", {}))
    return sorted(p.name for p in Path(out).glob(names_glob) if p.name not in listed)


def package_versions() -> dict[str, str]:
    from importlib import metadata

    out = {}
    for name in ("numpy", "scipy", "pandas", "statsmodels", "matplotlib", "tqdm", "distributed"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def git_commit(root: Path) -> dict:
    """``{"commit", "dirty"}`` of the repository holding ``root`` (empty when git is not available)."""
    import subprocess

    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5)
        if head.returncode != 0:
            return {}
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", "experiments",
                                "analysis"], cwd=root, capture_output=True, text=True, timeout=5)
        return {"commit": head.stdout.strip(), "dirty": bool(dirty.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return {}
