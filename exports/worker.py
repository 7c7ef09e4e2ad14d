"""This server process's identity as an export worker, the exports it is running, whether
another worker still lives, and the flag that tells its jobs to let go.

A worker id is "host:boot:pidns:pid:start": the boot and the pid namespace tell whether a pid
can be checked from here at all (a container sharing the host name cannot be), and the start
(clock ticks since boot, from /proc, immune to wall-clock changes) tells a pid reused by a later
process from the dead one. The id is computed again after a fork, so every gunicorn worker
has its own.
"""

import os
import socket
import threading
from pathlib import Path
from uuid import UUID

_cache: dict[int, str] = {}  # pid -> worker id, so a forked child computes its own
_running: set[UUID] = set()  # tasks claimed by this process and not yet ended
_running_lock = threading.Lock()
letting_go = threading.Event()  # set by a graceful stop: jobs stop at their next batch


def worker_id() -> str:
    pid = os.getpid()
    if pid not in _cache:
        _cache.clear()
        _cache[pid] = f"{_machine()}:{pid}:{_start_ticks(pid)}"
    return _cache[pid]


def owner_alive(owner: str) -> bool | None:
    """True or False for a worker whose pid this process can check; None when only its
    heartbeat can tell (another host, boot or pid namespace, or an id of another form)."""
    head, _, start = owner.rpartition(":")
    machine, _, pid = head.rpartition(":")
    if machine != _machine() or not pid.isdigit():
        return None
    ticks = _start_ticks(int(pid))
    return bool(ticks) and ticks == start


def mark_running(task_id: UUID) -> None:
    with _running_lock:
        _running.add(task_id)


def mark_ended(task_id: UUID) -> None:
    with _running_lock:
        _running.discard(task_id)


def running() -> set[UUID]:
    with _running_lock:
        return set(_running)


def _machine() -> str:
    boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()[:8]
    return f"{socket.gethostname()}:{boot}:{os.stat('/proc/self/ns/pid').st_ino}"


def _start_ticks(pid: int) -> str:
    """The process's start in clock ticks since boot ('' when no such process)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return ""
    return stat.rpartition(")")[2].split()[19]  # field 22; the name may hold spaces
