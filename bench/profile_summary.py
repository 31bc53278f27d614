#!/usr/bin/env python3
"""Summarise a py-spy profile of the server: where does its CPU go?

    python bench/load.py --phases e2e --py-spy /tmp/server.txt   # collapsed stacks ("raw" format)
    python bench/profile_summary.py /tmp/server.txt

Every sample is charged to one category, found by walking its stack from the innermost frame
outwards and taking the first frame that matches a category (so ``json.dumps`` called by asyncpg's
jsonb codec counts as JSON, not as asyncpg). Also prints the inclusive share of a few functions
of interest and the top self-time frames.

py-spy samples wall time while the process is not idle, so time spent preempted (runnable, waiting
for a CPU) counts too; on a busy machine that inflates syscalls that wake another process (a
socket send() to PostgreSQL). Under uvloop, socket I/O runs in C and is charged to the calling
Python frame (asyncpg's ``_do_execute``, aiohttp's writer), and the loop's own C code shows as
``Runner.run``.

Not part of the test suite.
"""

from __future__ import annotations

import argparse
import collections
import re
import sys

# (category, regex on one frame "Class.function (path:line)"), most specific first.
CATEGORIES: list[tuple[str, re.Pattern[str]]] = [
    ("signature recovery (coincurve + sha3)",
     re.compile(r"recover_id|\(coincurve/|sha3_hex|\(pycolonies/crypto\.py")),
    ("JSON encode/decode",
     re.compile(r"\(json/|orjson|pycolonies/jsontext\.py|_reject_constant|_path_with_nul")),
    ("base64", re.compile(r"\(base64\.py|binascii")),
    ("msgpack", re.compile(r"msgpack")),
    ("logging", re.compile(r"\(logging/")),
    ("asyncpg Python code (pool, connection, transaction)", re.compile(r"\(asyncpg/")),
    ("aiohttp Python code (request handling, responses)",
     re.compile(r"\((aiohttp|multidict|yarl|propcache)/")),
    ("wire models (from_wire/to_wire, dataclasses, time formats)",
     re.compile(r"\(pycolonies/(models|codec|wire)\.py|\(dataclasses\.py|\(_strptime|\(datetime")),
    ("server code (rpc, handlers, auth, store, scheduler)", re.compile(r"\(server/")),
    ("asyncio event loop (tasks, futures, timeouts)", re.compile(r"\(asyncio/|\(selectors\.py|\(socket\.py")),
]

_SEND = re.compile(r"_SelectorSocketTransport\.write \(")
_RECV = re.compile(r"_read_ready__data_received \(")
_SELECT = re.compile(r"EpollSelector\.select \(")
_ASYNCPG = re.compile(r"\(asyncpg/")
_AIOHTTP = re.compile(r"\((aiohttp)/")


def _fn(name: str, path: str = "") -> re.Pattern[str]:
    """A frame of function ``name`` (any class), optionally in a file matching ``path``."""
    return re.compile(rf"(^|\.){name} \({path}")


INCLUSIVE = [
    ("RpcEndpoint.handle (a whole /api request)", _fn("handle", r"server/rpc\.py")),
    ("  reading the body + envelope JSON", _fn("_read_envelope")),
    ("  recover_id (signature recovery)", _fn("recover_id")),
    ("  decode_message (base64 + JSON of the payload)", _fn("decode_message")),
    ("  ReplayGuard.admit (seen_requests insert)", _fn("admit", r"server/replay\.py")),
    ("  auth.require_member (membership query)", _fn("require_member")),
    ("  to_wire (reply shaping)", _fn("to_wire")),
    ("  wire.reply_envelope (reply JSON + base64)", _fn("reply_envelope")),
    ("asyncpg: every statement (Pool/Connection execute/fetch*)",
     re.compile(r"(Pool|Connection)\.(execute|fetch|fetchrow|fetchval|executemany) \(asyncpg/")),
    ("asyncpg: pool release = reset query", _fn("release", r"asyncpg/pool\.py")),
    ("asyncpg: BEGIN/COMMIT (transaction start/commit)",
     re.compile(r"Transaction\.(start|_commit|__commit|commit|__aexit__) \(")),
    ("socket send() syscalls (any caller)", _SEND),
    ("store: to_process / with_attributes / from_wire",
     re.compile(r"(^|\.)(to_process|with_attributes|_attributes_for|from_wire) \(")),
    ("json.dumps / json.loads (any caller)", re.compile(r"(^|\.)(dumps|loads) \(json/")),
    ("base64 (any caller)", re.compile(r"\(base64\.py")),
    ("logging", re.compile(r"\(logging/")),
]

_LINE = re.compile(r"^(?P<stack>.*) (?P<count>\d+)$")


def parse(path: str) -> list[tuple[list[str], int]]:
    stacks: list[tuple[list[str], int]] = []
    with open(path, errors="replace") as fh:
        for line in fh:
            match = _LINE.match(line.rstrip("\n"))
            if not match:
                continue
            frames = [f.strip() for f in match.group("stack").split(";") if f.strip()]
            # py-spy --subprocesses / --threads prefix the stack with process / thread frames
            frames = [f for f in frames if not f.startswith(("process ", "thread "))]
            stacks.append((frames, int(match.group("count"))))
    return stacks


def categorise(frames: list[str]) -> str:
    if frames and _SEND.search(frames[-1]):
        for frame in reversed(frames):
            if _ASYNCPG.search(frame):
                return "socket send() syscalls: to PostgreSQL (asyncpg)"
            if _AIOHTTP.search(frame):
                return "socket send() syscalls: HTTP replies (aiohttp)"
        return "socket send() syscalls: other"
    if frames and _RECV.search(frames[-1]):
        return "socket recv() + C-level protocol parsing (asyncpg protocol, aiohttp parser)"
    if frames and _SELECT.search(frames[-1]):
        return "epoll (event loop polling)"
    for frame in reversed(frames):  # innermost first
        for name, pattern in CATEGORIES:
            if pattern.search(frame):
                return name
    return "other (interpreter, stdlib)"


# Where a request's own work is, by message type: the handler's frame (rpc.dispatch calls it).
HANDLERS = [
    ("submitfuncspecmsg (handlers.processes.submit)", _fn("submit", r"server/handlers/processes\.py")),
    ("assignprocessmsg (handlers.processes.assign_process)", _fn("assign_process", r"server/handlers/")),
    ("closesuccessfulmsg (handlers.processes.close_successful)",
     _fn("close_successful", r"server/handlers/processes\.py")),
]
_HANDLE = _fn("handle", r"server/rpc\.py")


def by_request_type(stacks: list[tuple[list[str], int]], total: int,
                    ms_per_process: float | None) -> list[str]:
    """Samples inside each hot handler, inside the request path shared by every type (HTTP,
    envelope, signature, reply), and outside requests (event loop, listeners, sweeper)."""
    counts: collections.Counter[str] = collections.Counter()
    for frames, count in stacks:
        handler = next((name for name, pattern in HANDLERS if any(pattern.search(f) for f in frames)), None)
        if handler is not None:
            counts[handler] += count
        elif any(_HANDLE.search(f) for f in frames):
            counts["every request: reading, envelope, signature, dispatch, reply"] += count
        elif any(_AIOHTTP.search(f) for f in frames):
            counts["every request: aiohttp's HTTP parsing and writing outside the handler"] += count
        else:
            counts["outside requests: event loop, listeners, sweeper, pools"] += count
    unit = " = {:.2f} ms per process" if ms_per_process else ""
    lines = []
    for name, count in counts.most_common():
        share = count / total
        lines.append(f"  {100.0 * share:5.1f}%{unit.format(share * ms_per_process) if unit else ''}  {name}")
    return lines


def summarise(stacks: list[tuple[list[str], int]], top: int = 20, ms_per_process: float | None = None) -> str:
    total = sum(count for _, count in stacks)
    if not total:
        return "no samples"
    lines = [f"{total:,} samples of the server process tree (non-idle wall time)", "",
             "By category (innermost matching frame):"]
    by_category: collections.Counter[str] = collections.Counter()
    for frames, count in stacks:
        by_category[categorise(frames)] += count
    for name, count in by_category.most_common():
        lines.append(f"  {100.0 * count / total:5.1f}%  {name}")
    lines += ["", "By request type (the handler's own work; the rest of a request is shared by every type)"
              + (f", of {ms_per_process} ms of server CPU per process:" if ms_per_process else ":")]
    lines += by_request_type(stacks, total, ms_per_process)
    lines += ["", "Inclusive share of functions of interest:"]
    for name, pattern in INCLUSIVE:
        hit = sum(count for frames, count in stacks if any(pattern.search(f) for f in frames))
        lines.append(f"  {100.0 * hit / total:5.1f}%  {name}")
    lines += ["", f"Top {top} self-time frames:"]
    self_time: collections.Counter[str] = collections.Counter()
    for frames, count in stacks:
        if frames:
            self_time[frames[-1]] += count
    for frame, count in self_time.most_common(top):
        lines.append(f"  {100.0 * count / total:5.1f}%  {frame}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("profile", help="py-spy record output in raw (collapsed stacks) format")
    parser.add_argument("--top", type=int, default=20)
    parser.add_argument("--ms-per-process", type=float,
                        help="the server's CPU ms per process (bench/throughput.py's cpu_s_per_1000.server): "
                             "shares are also shown as ms per process")
    args = parser.parse_args()
    print(summarise(parse(args.profile), args.top, args.ms_per_process))
    return 0


if __name__ == "__main__":
    sys.exit(main())
