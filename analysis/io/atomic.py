"""The one place where odenet writes files: atomic publication and an exclusive writer's lock.

Every file odenet writes appears under its name in one step, complete, or not at all:

1. the content goes to a temporary file created with ``O_EXCL`` (:func:`tempfile.mkstemp`) in the
   target's own folder, named ``.<target>.<random>.tmp`` (never a fixed name, so a planted
   symbolic link is never followed);
2. the temporary file is flushed and ``fsync``'ed;
3. it is published by ``os.replace`` (``overwrite=True``) or by a hard link that fails if the
   target appeared meanwhile (``overwrite=False``), and the folder is ``fsync``'ed.

Any exception (or a kill) before step 3 leaves the target as it was; the temporary file is
removed on exceptions and left behind only by a kill (``odenet inspect --clean`` lists and
removes such leftovers).

Writers that read, modify and replace a file (appends, a sweep's assembly) hold
:func:`exclusive_lock` for the whole read-copy-replace cycle, so that two writers never both
start from the same old content (the second would silently drop the first's record).  The lock
is a sidecar file ``<target>.lock`` (the ``filelock`` package: ``fcntl.flock`` on POSIX, freed by
the OS when the holder dies); it stays beside the target after use and is never stale.  The lock
is re-entrant within a thread (a sweep's assembly holds it and calls a writer that takes it
again).  Readers take no lock: they see the old or the new file, whole.
"""
from __future__ import annotations

import contextlib
import os
import re
import stat
import tempfile
from pathlib import Path
from typing import Iterator

import filelock

__all__ = ["exclusive_lock", "lock_path", "temp_beside", "publish", "atomic_path", "atomic_write_bytes",
           "atomic_write_text", "temp_files_of", "TEMP_SUFFIX"]

#: Temporary files are named ``.<target>.<random>`` + TEMP_SUFFIX beside their target.
TEMP_SUFFIX = ".tmp"
#: the ``<random>`` part :func:`tempfile.mkstemp` draws: 8 characters of this alphabet
_RANDOM = "[a-z0-9_]{8}"


def lock_path(path: str | os.PathLike) -> Path:
    """The sidecar lock file of ``path``: ``<path>.lock`` in the same folder."""
    p = Path(path)
    return p.with_name(p.name + ".lock")


@contextlib.contextmanager
def exclusive_lock(path: str | os.PathLike, *, timeout: float = -1) -> Iterator[Path]:
    """Hold the exclusive writer's lock of ``path`` (its sidecar ``<path>.lock``) for the ``with``
    block.  ``timeout`` in seconds; -1 waits for ever, 0 fails at once.  Raises TimeoutError
    naming the file when the lock cannot be had in time."""
    lp = lock_path(path)
    # one FileLock object per lock file and process (is_singleton): re-entrant, where two objects
    # on the same file would deadlock (flock locks per open file, even within one process)
    lock = filelock.FileLock(os.path.abspath(lp), is_singleton=True)
    try:
        lock.acquire(timeout=timeout)
    except filelock.Timeout:
        raise TimeoutError(f"another process holds the write lock {os.fspath(lp)!r} of {os.fspath(path)!r}; "
                           f"waited {timeout} s") from None
    try:
        yield lp
    finally:
        lock.release()


def temp_beside(path: str | os.PathLike) -> str:
    """Create (``O_EXCL``) and close an empty temporary file ``.<name>.<random>.tmp`` in the folder
    of ``path``; return its path."""
    p = Path(path)
    fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.", suffix=TEMP_SUFFIX)
    os.close(fd)
    return tmp


def temp_files_of(path: str | os.PathLike) -> list[Path]:
    """The temporary files :func:`temp_beside` made for ``path`` that are still there: regular files
    (not links, not folders) in its folder named exactly ``.<name>.<8 random characters>.tmp``.
    A writer that is running has one; a killed writer leaves one behind (stale).  Nothing else
    matches (not ``<path>.lock``, not another file's temporaries)."""
    p = Path(path)
    pattern = re.compile(re.escape(f".{p.name}.") + _RANDOM + re.escape(TEMP_SUFFIX))
    found = []
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        for entry in os.scandir(p.parent if os.fspath(p.parent) else "."):
            if pattern.fullmatch(entry.name) and stat.S_ISREG(entry.stat(follow_symlinks=False).st_mode):
                found.append(p.parent / entry.name)
    return sorted(found)


def fsync_file(path: str | os.PathLike) -> None:
    """Flush a closed file's data to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(folder: str | os.PathLike) -> None:
    """Make a rename in ``folder`` durable (a no-op where folders cannot be opened, e.g. Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _read_umask() -> int:
    """The process umask, read once at import (os.umask can only be read by setting it, which
    would briefly open every file created meanwhile by another thread)."""
    umask = os.umask(0o022)
    os.umask(umask)
    return umask


_UMASK = _read_umask()


def default_mode() -> int:
    """Permission bits of a new file under the process umask (mkstemp creates 0o600)."""
    return 0o666 & ~_UMASK


def publish(tmp: str | os.PathLike, path: str | os.PathLike, *, overwrite: bool) -> None:
    """Move the finished, fsync'ed ``tmp`` to ``path`` and make the rename durable.  Without
    ``overwrite`` a hard link (which fails if ``path`` exists) closes the gap between an
    existence check and the rename: FileExistsError, ``tmp`` left for the caller to remove."""
    p = Path(path)
    if overwrite:
        os.replace(tmp, p)
    else:
        try:
            os.link(tmp, p)
        except FileExistsError:
            raise FileExistsError(f"{os.fspath(p)!r} appeared while it was being written; pass overwrite=True "
                                  f"to replace it") from None
        except OSError:  # no hard links on this file system: the plain rename
            if p.exists():
                raise FileExistsError(f"{os.fspath(p)!r} exists; pass overwrite=True to replace it") from None
            os.replace(tmp, p)
        else:
            os.unlink(tmp)
    fsync_dir(p.parent)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, overwrite: bool = True) -> Iterator[str]:
    """Yield the path of a fresh temporary file beside ``path`` for the caller to fill; on a clean
    exit it is fsync'ed, given the umask's permissions and published under ``path`` (see
    :func:`publish`); on any exception it is removed and ``path`` is untouched."""
    p = Path(path)
    if not p.parent.is_dir():
        raise FileNotFoundError(f"folder {os.fspath(p.parent)!r} of {os.fspath(path)!r} does not exist")
    if not overwrite and p.exists():
        raise FileExistsError(f"{os.fspath(p)!r} exists; pass overwrite=True to replace it")
    tmp = temp_beside(p)
    try:
        yield tmp
        fsync_file(tmp)
        os.chmod(tmp, default_mode())
        publish(tmp, p, overwrite=overwrite)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes, *, overwrite: bool = True) -> None:
    """Write ``data`` to ``path`` atomically (module docstring)."""
    with atomic_path(path, overwrite=overwrite) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)


def atomic_write_text(path: str | os.PathLike, text: str, *, overwrite: bool = True,
                      encoding: str = "utf-8") -> None:
    """Write ``text`` to ``path`` atomically (module docstring)."""
    atomic_write_bytes(path, text.encode(encoding), overwrite=overwrite)
