"""This server process's identity as an export worker, and whether another worker still lives.

A worker id is "host:pid:start", the start being the process's start time as the kernel
reports it, so a pid reused by a later process never passes for the dead one. The id is
computed again after a fork, so every gunicorn worker has its own.
"""

import os
import socket

import psutil

_cache: dict[int, str] = {}  # pid -> worker id, so a forked child computes its own


def worker_id() -> str:
    pid = os.getpid()
    if pid not in _cache:
        _cache.clear()
        _cache[pid] = f"{socket.gethostname()}:{pid}:{_start_time(pid)}"
    return _cache[pid]


def owner_alive(owner: str) -> bool | None:
    """True or False for a worker of this host; None when only its heartbeat can tell."""
    parts = owner.rsplit(":", 2)
    if len(parts) != 3 or not parts[1].isdigit():
        return None
    host, pid, started = parts
    if host != socket.gethostname():
        return None
    try:
        return str(_start_time(int(pid))) == started
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
        return False


def _start_time(pid: int) -> int:
    """The process's start time in hundredths of a second (stable for its whole life)."""
    return round(psutil.Process(pid).create_time() * 100)
