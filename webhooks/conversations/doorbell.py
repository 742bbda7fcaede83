"""How a commit that makes a chat ready wakes the workers of an SQLite database at once.

SQLite has no signal between processes (PostgreSQL has NOTIFY), and all of its processes share
one machine, so each worker process binds a Unix datagram socket, its doorbell, in a directory
of its own user's named after the database; a transaction that makes chats ready rings every
doorbell there once it commits. A ring is only a hint to look: a lost one costs a worker its
next look (webhooks.worker.wakeup), never a message. Where Unix datagram sockets are missing,
nothing rings and the workers look on their own.
"""

import contextlib
import functools
import hashlib
import logging
import os
import secrets
import socket
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

from django.db import connection

logger = logging.getLogger(__name__)

_USER = os.getuid() if hasattr(os, "getuid") else None  # None: no user ids here (Windows)


@contextlib.contextmanager
def doorbell() -> Iterator[socket.socket | None]:
    """A socket this process is rung on while the block lasts (blocking: the caller sets its
    timeout), or None where one cannot be made."""
    place = directory()
    path = place / f"{os.getpid()}-{secrets.token_hex(4)}"
    bell: socket.socket | None = None
    try:
        place.mkdir(mode=0o700, exist_ok=True)
        if not _ours(place):
            raise PermissionError(f"{place} is not a private directory of this user")
        bell = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        bell.bind(str(path))
    except (AttributeError, OSError) as error:  # AttributeError: no AF_UNIX here
        logger.warning("no doorbell (%s): workers find new messages by looking", error)
        if bell is not None:
            bell.close()
        yield None
        return
    try:
        yield bell
    finally:
        bell.close()
        path.unlink(missing_ok=True)


def ring() -> None:
    """Ring every doorbell of this database on this machine. Never fails its caller: it runs
    after a commit that must stand whatever happens here."""
    place = directory()
    try:
        # Someone else's directory, or a link to one, is neither rung nor tidied.
        paths = list(place.iterdir()) if _ours(place) else []
    except OSError:
        return  # no worker has a doorbell
    try:
        sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    except (AttributeError, OSError):
        return
    with sender:
        sender.setblocking(False)
        for path in paths:
            try:
                sender.sendto(b"!", str(path))
            except (ConnectionRefusedError, FileNotFoundError):
                _remove_if_socket(path)  # left by a worker that died
            except OSError:
                pass  # its queue is full: rung already, or not ours to ring


def _ours(directory: Path) -> bool:
    """Whether `directory` is a real directory (not a link) of this user's, closed to others:
    one that someone else made first at its predictable name must be neither trusted with a
    doorbell nor tidied."""
    try:
        status = directory.lstat()
    except OSError:
        return False
    owner = status.st_uid if _USER is None else _USER
    return stat.S_ISDIR(status.st_mode) and status.st_uid == owner and not status.st_mode & 0o077


def _remove_if_socket(path: Path) -> None:
    with contextlib.suppress(OSError):
        if stat.S_ISSOCK(path.lstat().st_mode):
            path.unlink()


def directory() -> Path:
    """Where the doorbells of this database on this machine are: named after the database, so
    that two Omnihubs on one machine ring only their own workers, and after the user, so that
    no one else's directory is taken for ours."""
    return _directory_of(str(connection.settings_dict["NAME"]))


@functools.cache  # asked after every commit that makes a chat ready: worked out once
def _directory_of(database: str) -> Path:
    digest = hashlib.sha256(os.path.realpath(database).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"omnihub-doorbells-{_USER or 0}-{digest}"
