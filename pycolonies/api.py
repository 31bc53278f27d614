"""Every Colonies RPC, defined once for the sync and the async client.

Each method builds the message dict (``{"msgtype": ..., fields}``) and hands it to
``self._invoke(msg, prvkey, parse)``; ``parse`` turns the decoded reply JSON into the return value.
:class:`~pycolonies.client.Colonies` implements ``_invoke`` synchronously, so a method returns
its value; :class:`~pycolonies.aio.AsyncColonies` implements it as a coroutine, so the same method
returns an awaitable of that value. The return annotations below describe the sync client.

Method names and argument order follow the reference SDK; the signing key ``prvkey`` comes last
unless an optional argument follows it.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, overload

from pycolonies import wire
from pycolonies.api_blueprints import BlueprintsApi
from pycolonies.models import File, FuncSpec, Process, ProcessGraph, Workflow

Parse = Callable[[Any], Any]
JSONDict = dict[str, Any]


def _raw(reply: Any) -> Any:
    return reply


def _as_list(reply: Any) -> list[Any]:
    """A list reply; the reference server sends ``null`` for an empty list."""
    return [] if reply is None else list(reply)


def _assigned(reply: Any) -> Process | None:
    """``closeassignmsg``'s reply: the next process, or None."""
    process = reply.get("process") if isinstance(reply, dict) else None
    return Process.from_wire(process) if process else None


def _is_paused(reply: Any) -> bool:
    """``getpausestatusmsg``'s reply ``{"colonyname", "ispaused"}``."""
    return bool(reply.get("ispaused")) if isinstance(reply, dict) else False


def channel_payload(payload: bytes | str) -> str:
    """A channel payload on the wire: base64 (as Go encodes a []byte); a str is UTF-8 first."""
    data = payload.encode() if isinstance(payload, str) else bytes(payload)
    return base64.b64encode(data).decode("ascii")


def channel_entries(reply: Any) -> list[JSONDict]:
    """Channel entries with their payloads decoded to bytes (a base64 string or a byte list)."""
    entries = []
    for entry in _as_list(reply):
        payload = entry.get("payload")
        data = base64.b64decode(payload) if isinstance(payload, str) else bytes(payload or [])
        entries.append({**entry, "payload": data})
    return entries


def children_specs(funcspecs: list[FuncSpec | JSONDict], nodenames: list[str] | None) -> list[JSONDict]:
    """The wire specs of ``add_children``: each with its nodename (``nodenames[i]``, else its own)."""
    if nodenames is not None and len(nodenames) != len(funcspecs):
        raise ValueError(f"add_children: {len(nodenames)} nodenames for {len(funcspecs)} function specs")
    specs = []
    for index, funcspec in enumerate(funcspecs):
        if nodenames is not None:
            specs.append(_spec_with_nodename(funcspec, nodenames[index]))
        else:
            specs.append(dict(_wire(funcspec)))
    return specs


def _wire(obj: Any) -> Any:
    """A model (anything with ``to_wire()``) as JSON-ready data; dicts pass through unchanged."""
    to_wire = getattr(obj, "to_wire", None)
    return to_wire() if callable(to_wire) else obj


def _spec_with_nodename(funcspec: FuncSpec | JSONDict, nodename: str) -> JSONDict:
    if isinstance(funcspec, FuncSpec):
        return dataclasses.replace(funcspec, nodename=nodename).to_wire()
    return {**funcspec, "nodename": nodename}


class ColoniesApi(BlueprintsApi, ABC):
    """The Colonies RPC surface. Subclasses provide the transport in :meth:`_invoke`."""

    WAITING = wire.WAITING
    RUNNING = wire.RUNNING
    SUCCESSFUL = wire.SUCCESS
    FAILED = wire.FAILED
    CANCELLED = wire.CANCELLED

    @abstractmethod
    def _invoke(self, msg: JSONDict, prvkey: str | None, parse: Parse) -> Any:
        """Send ``msg`` signed with ``prvkey`` (unsigned if None) and return ``parse(reply)``."""

    @abstractmethod
    def _close_transport(self) -> Any:
        """Release connections; see :meth:`close`."""

    # -- colonies and statistics ----------------------------------------------------------------

    def add_colony(self, colony: JSONDict, prvkey: str) -> JSONDict:
        """Add a colony ``{"colonyid", "name"}`` (server key)."""
        return self._invoke({"msgtype": "addcolonymsg", "colony": _wire(colony)}, prvkey, _raw)

    def del_colony(self, colonyname: str, prvkey: str) -> JSONDict:
        """Remove a colony and everything in it (server key)."""
        return self._invoke({"msgtype": "removecolonymsg", "colonyname": colonyname}, prvkey, _raw)

    def list_colonies(self, prvkey: str) -> list[JSONDict]:
        """All colonies (server key)."""
        return self._invoke({"msgtype": "getcoloniesmsg"}, prvkey, _as_list)

    def get_colony(self, colonyname: str, prvkey: str) -> JSONDict:
        return self._invoke({"msgtype": "getcolonymsg", "colonyname": colonyname}, prvkey, _raw)

    def stats(self, colonyname: str, prvkey: str) -> JSONDict:
        """Process, workflow and executor counters of a colony."""
        return self._invoke({"msgtype": "getcolonystatsmsg", "colonyname": colonyname}, prvkey, _raw)

    # -- executors ------------------------------------------------------------------------------

    def add_executor(self, executor: JSONDict, prvkey: str) -> JSONDict:
        """Register an executor ``{"executorname", "executorid", "colonyname", "executortype"}``
        (colony key); it starts PENDING until approved."""
        return self._invoke({"msgtype": "addexecutormsg", "executor": _wire(executor)}, prvkey, _raw)

    def list_executors(self, colonyname: str, prvkey: str) -> list[JSONDict]:
        return self._invoke({"msgtype": "getexecutorsmsg", "colonyname": colonyname}, prvkey, _as_list)

    def get_executor(self, colonyname: str, executorname: str, prvkey: str) -> JSONDict:
        return self._invoke(_executor_msg("getexecutormsg", colonyname, executorname), prvkey, _raw)

    def approve_executor(self, colonyname: str, executorname: str, prvkey: str) -> JSONDict:
        return self._invoke(_executor_msg("approveexecutormsg", colonyname, executorname), prvkey, _raw)

    def reject_executor(self, colonyname: str, executorname: str, prvkey: str) -> JSONDict:
        return self._invoke(_executor_msg("rejectexecutormsg", colonyname, executorname), prvkey, _raw)

    def remove_executor(self, colonyname: str, executorname: str, prvkey: str) -> JSONDict:
        return self._invoke(_executor_msg("removeexecutormsg", colonyname, executorname), prvkey, _raw)

    def heartbeat(self, colonyname: str, prvkey: str) -> JSONDict:
        """Tell the server the signing executor (approved, of ``colonyname``) is alive: stamps its
        ``lastheardfromtime`` while it works on long processes. An extension of the reference
        protocol (its servers only stamp on assign)."""
        return self._invoke({"msgtype": "heartbeatmsg", "colonyname": colonyname}, prvkey, _raw)

    def update_executor(self, colonyname: str, executorname: str, capabilities: JSONDict, prvkey: str
                        ) -> JSONDict:
        """Replace the signing executor's own capabilities ``{"hardware": [...], "software": [...]}``."""
        msg = {**_executor_msg("updateexecutormsg", colonyname, executorname),
               "capabilities": _wire(capabilities)}
        return self._invoke(msg, prvkey, _raw)

    def report_allocations(self, colonyname: str, executorname: str, allocations: JSONDict, prvkey: str
                           ) -> JSONDict:
        """Report the signing executor's own allocations ``{"projects": {name: {...}}}``."""
        msg = {**_executor_msg("reportallocationmsg", colonyname, executorname),
               "allocations": _wire(allocations)}
        return self._invoke(msg, prvkey, _raw)

    def add_executor_log(self, colonyname: str, executorname: str, logmsg: str, prvkey: str) -> JSONDict:
        """Log in the signing executor's own name, outside any process (read with
        ``get_executor_log``)."""
        msg = {**_executor_msg("addexecutorlogmsg", colonyname, executorname), "message": logmsg}
        return self._invoke(msg, prvkey, _raw)

    # -- nodes (derived from the executors' capabilities and locations) --------------------------

    def get_nodes(self, colonyname: str, prvkey: str) -> list[JSONDict]:
        return self._invoke({"msgtype": "getnodesmsg", "colonyname": colonyname}, prvkey, _as_list)

    def get_node(self, colonyname: str, nodename: str, prvkey: str) -> JSONDict:
        msg = {"msgtype": "getnodemsg", "colonyname": colonyname, "nodename": nodename}
        return self._invoke(msg, prvkey, _raw)

    def get_nodes_by_location(self, colonyname: str, location: str, prvkey: str) -> list[JSONDict]:
        msg = {"msgtype": "getnodesbylocationmsg", "colonyname": colonyname, "location": location}
        return self._invoke(msg, prvkey, _as_list)

    # -- locations ------------------------------------------------------------------------------

    def add_location(self, location: JSONDict, prvkey: str) -> JSONDict:
        """Add a location ``{"name", "colonyname", "description", "long", "lat"}`` (colony key);
        ``locationid`` is generated when empty."""
        return self._invoke({"msgtype": "addlocationmsg", "location": _wire(location)}, prvkey, _raw)

    def get_locations(self, colonyname: str, prvkey: str) -> list[JSONDict]:
        return self._invoke({"msgtype": "getlocationsmsg", "colonyname": colonyname}, prvkey, _as_list)

    def get_location(self, colonyname: str, name: str, prvkey: str) -> JSONDict:
        msg = {"msgtype": "getlocationmsg", "colonyname": colonyname, "name": name}
        return self._invoke(msg, prvkey, _raw)

    def remove_location(self, colonyname: str, name: str, prvkey: str) -> JSONDict:
        msg = {"msgtype": "removelocationmsg", "colonyname": colonyname, "name": name}
        return self._invoke(msg, prvkey, _raw)

    # -- ID rotation: afterwards the old key is refused; sign with the key of the new id -------

    def change_user_id(self, colonyname: str, userid: str, prvkey: str) -> JSONDict:
        """The signing user's id becomes ``userid`` (the id of its new key)."""
        msg = {"msgtype": "changeuseridmsg", "colonyname": colonyname, "userid": userid}
        return self._invoke(msg, prvkey, _raw)

    def change_executor_id(self, colonyname: str, executorid: str, prvkey: str) -> JSONDict:
        """The signing executor's id becomes ``executorid``; its running processes stay its own."""
        msg = {"msgtype": "changeexecutoridmsg", "colonyname": colonyname, "executorid": executorid}
        return self._invoke(msg, prvkey, _raw)

    def change_colony_id(self, colonyname: str, colonyid: str, prvkey: str) -> JSONDict:
        """The colony's id (its owner key) becomes ``colonyid`` (colony key)."""
        msg = {"msgtype": "changecolonyidmsg", "colonyname": colonyname, "colonyid": colonyid}
        return self._invoke(msg, prvkey, _raw)

    def change_server_id(self, serverid: str, prvkey: str) -> JSONDict:
        """The server owner's id becomes ``serverid`` (server key), on every replica and across
        restarts."""
        return self._invoke({"msgtype": "changeserveridmsg", "serverid": serverid}, prvkey, _raw)

    # -- users ----------------------------------------------------------------------------------

    def add_user(self, user: JSONDict, prvkey: str) -> JSONDict:
        """Add a user ``{"colonyname", "userid", "name", "email", "phone"}`` (colony key)."""
        return self._invoke({"msgtype": "addusermsg", "user": _wire(user)}, prvkey, _raw)

    def get_users(self, colonyname: str, prvkey: str) -> list[JSONDict]:
        return self._invoke({"msgtype": "getusersmsg", "colonyname": colonyname}, prvkey, _as_list)

    def get_user(self, colonyname: str, name: str, prvkey: str) -> JSONDict:
        msg = {"msgtype": "getusermsg", "colonyname": colonyname, "name": name}
        return self._invoke(msg, prvkey, _raw)

    def remove_user(self, colonyname: str, name: str, prvkey: str) -> JSONDict:
        msg = {"msgtype": "removeusermsg", "colonyname": colonyname, "name": name}
        return self._invoke(msg, prvkey, _raw)

    # -- function registry ----------------------------------------------------------------------

    def add_function(
        self, colonyname: str, executorname: str, funcname: str, prvkey: str,
        args: list[str] | None = None, description: str = "",
    ) -> JSONDict:
        """Register a function of the signing executor; ``args`` (argument names) and
        ``description`` are optional extras shown by ``colonies function ls``."""
        fun: JSONDict = {"executorname": executorname, "colonyname": colonyname, "funcname": funcname}
        if args:
            fun["args"] = [{"name": name} for name in args]
        if description:
            fun["description"] = description
        return self._invoke({"msgtype": "addfunctionmsg", "fun": fun}, prvkey, _raw)

    def get_functions_by_executor(self, colonyname: str, executorname: str, prvkey: str) -> list[JSONDict]:
        msg = {"msgtype": "getfunctionsmsg", "colonyname": colonyname, "executorname": executorname}
        return self._invoke(msg, prvkey, _as_list)

    def get_functions_by_colony(self, colonyname: str, prvkey: str) -> list[JSONDict]:
        return self._invoke({"msgtype": "getfunctionsmsg", "colonyname": colonyname}, prvkey, _as_list)

    def remove_function(self, functionid: str, prvkey: str) -> JSONDict:
        return self._invoke({"msgtype": "removefunctionmsg", "functionid": functionid}, prvkey, _raw)

    # -- processes ------------------------------------------------------------------------------

    def submit_func_spec(self, spec: FuncSpec | JSONDict, prvkey: str) -> Process:
        """Submit a function spec; returns the new (WAITING) process."""
        msg = {"msgtype": "submitfuncspecmsg", "spec": _wire(spec)}
        return self._invoke(msg, prvkey, Process.from_wire)

    def assign(
        self,
        colonyname: str,
        timeout: int,
        prvkey: str,
        availablecpu: str = "",
        availablemem: str = "",
    ) -> Process:
        """Long-poll up to ``timeout`` seconds for a process to run.

        Raises :class:`~pycolonies.errors.NotFoundError` (a ``ColoniesConnectionError``) when
        nothing was assignable in time.
        """
        msg = {
            "msgtype": "assignprocessmsg",
            "colonyname": colonyname,
            "timeout": timeout,
            "availablecpu": availablecpu,
            "availablemem": availablemem,
        }
        return self._invoke(msg, prvkey, Process.from_wire)

    def list_processes(
        self, colonyname: str, count: int, state: int, prvkey: str,
        executortype: str = "", label: str = "", initiator: str = "",
    ) -> list[JSONDict]:
        """Up to ``count`` (<= 100) processes of the colony in ``state``, as dicts; optionally
        only those of an executor type, with a label, or submitted by a user (by name)."""
        msg: JSONDict = {"msgtype": "getprocessesmsg", "colonyname": colonyname, "count": count,
                         "state": state}
        for key, value in (("executortype", executortype), ("label", label), ("initiator", initiator)):
            if value:
                msg[key] = value
        return self._invoke(msg, prvkey, _as_list)

    def get_process_history(self, colonyname: str, state: int, seconds: int, prvkey: str,
                            executorid: str = "") -> list[Process]:
        """The colony's processes in ``state`` submitted in the last ``seconds``, oldest first
        (only those assigned to ``executorid`` when given)."""
        msg = {"msgtype": "getprocesshistmsg", "colonyname": colonyname, "executorid": executorid,
               "seconds": seconds, "state": state}
        return self._invoke(msg, prvkey, lambda reply: [Process.from_wire(p) for p in _as_list(reply)])

    def get_process(self, processid: str, prvkey: str) -> Process:
        return self._invoke({"msgtype": "getprocessmsg", "processid": processid}, prvkey, Process.from_wire)

    def remove_process(self, processid: str, prvkey: str) -> JSONDict:
        return self._invoke({"msgtype": "removeprocessmsg", "processid": processid}, prvkey, _raw)

    def remove_all_processes(self, colonyname: str, prvkey: str, state: int = wire.NOTSET) -> JSONDict:
        """Remove the colony's processes in ``state`` (default -1: all states) (colony key)."""
        msg = {"msgtype": "removeallprocessesmsg", "colonyname": colonyname, "state": state}
        return self._invoke(msg, prvkey, _raw)

    @overload
    def close(self) -> Any: ...

    @overload
    def close(self, processid: str, output: list[Any], prvkey: str) -> JSONDict: ...

    def close(
        self,
        processid: str | None = None,
        output: list[Any] | None = None,
        prvkey: str | None = None,
    ) -> Any:
        """``close()`` releases the client's connections; ``close(processid, output, prvkey)``
        closes a process as successful with ``output`` (the reference SDK's RPC of that name)."""
        if processid is None and output is None and prvkey is None:
            return self._close_transport()
        if processid is None or prvkey is None:
            raise TypeError("close(processid, output, prvkey) needs a processid and a prvkey")
        return self.close_process(processid, output or [], prvkey)

    def close_process(self, processid: str, output: list[Any], prvkey: str) -> JSONDict:
        """Close a running process as SUCCESSFUL; a non-empty ``output`` replaces its output."""
        msg = {"msgtype": "closesuccessfulmsg", "processid": processid, "out": list(output)}
        return self._invoke(msg, prvkey, _raw)

    def close_and_assign(self, processid: str, output: list[Any], colonyname: str, prvkey: str,
                         timeout: int = -1) -> Process | None:
        """Close a running process as SUCCESSFUL and, in the same round trip, assign the next
        process of ``colonyname`` to the signer: the one ready now (``timeout`` <= 0) or within
        ``timeout`` s; None when there is none. Our extension (``closeassignmsg``): a reference
        server refuses it with 403 ``invalid rpcMsg.PayloadType`` (:func:`~pycolonies.errors.unsupported`
        tells); close with :meth:`close_process` then."""
        msg = {"msgtype": "closeassignmsg", "processid": processid, "out": list(output),
               "colonyname": colonyname, "timeout": timeout}
        return self._invoke(msg, prvkey, _assigned)

    def fail(self, processid: str, errors: list[Any], prvkey: str) -> JSONDict:
        """Close a running process as FAILED with ``errors``."""
        msg = {"msgtype": "closefailedmsg", "processid": processid, "errors": list(errors)}
        return self._invoke(msg, prvkey, _raw)

    def release_process(self, processid: str, prvkey: str) -> JSONDict:
        """Give a RUNNING process back to the queue (WAITING, no retry counted) so another executor
        runs it; signed by its assigned executor, e.g. when it shuts down. An extension of the
        reference protocol."""
        return self._invoke({"msgtype": "releaseprocessmsg", "processid": processid}, prvkey, _raw)

    def set_output(self, processid: str, arr: list[Any], prvkey: str) -> JSONDict:
        """Set the output of a running process without closing it."""
        msg = {"msgtype": "setoutputmsg", "processid": processid, "out": list(arr)}
        return self._invoke(msg, prvkey, _raw)

    def cancel_process(self, processid: str, prvkey: str) -> JSONDict:
        return self._invoke({"msgtype": "cancelprocessmsg", "processid": processid}, prvkey, _raw)

    def pause_assignments(self, colonyname: str, prvkey: str) -> JSONDict:
        """Pause the colony's assignments (colony key): assign calls then wait (or, trying once,
        find nothing) until :meth:`resume_assignments`."""
        return self._invoke({"msgtype": "pauseassignmentsmsg", "colonyname": colonyname}, prvkey, _raw)

    def resume_assignments(self, colonyname: str, prvkey: str) -> JSONDict:
        """Resume the colony's assignments (colony key); waiting assign calls go on at once."""
        return self._invoke({"msgtype": "resumeassignmentsmsg", "colonyname": colonyname}, prvkey, _raw)

    def get_pause_status(self, colonyname: str, prvkey: str) -> bool:
        """Whether the colony's assignments are paused (a member's key, or the colony key)."""
        return self._invoke({"msgtype": "getpausestatusmsg", "colonyname": colonyname}, prvkey, _is_paused)

    # -- attributes and logs --------------------------------------------------------------------

    def add_attribute(self, processid: str, key: str, value: str, prvkey: str) -> JSONDict:
        """Attach an OUT attribute ``key=value`` to a running process."""
        attribute = {"key": key, "value": value, "targetid": processid, "attributetype": wire.OUT}
        return self._invoke({"msgtype": "addattributemsg", "attribute": attribute}, prvkey, _raw)

    def get_attribute(self, attributeid: str, prvkey: str) -> JSONDict:
        return self._invoke({"msgtype": "getattributemsg", "attributeid": attributeid}, prvkey, _raw)

    def add_log(self, processid: str, logmsg: str, prvkey: str) -> JSONDict:
        msg = {"msgtype": "addlogmsg", "processid": processid, "message": logmsg}
        return self._invoke(msg, prvkey, _raw)

    def get_process_log(
        self,
        colonyname: str,
        processid: str,
        count: int,
        since: int,
        prvkey: str,
        latest: bool = False,
    ) -> list[JSONDict]:
        """Up to ``count`` log entries of a process newer than ``since`` (unix ns)."""
        return self._invoke(_logs_msg(colonyname, processid, "", count, since, latest), prvkey, _as_list)

    def get_executor_log(
        self,
        colonyname: str,
        executorname: str,
        count: int,
        since: int,
        prvkey: str,
        latest: bool = False,
    ) -> list[JSONDict]:
        """Up to ``count`` log entries written by an executor newer than ``since`` (unix ns)."""
        return self._invoke(_logs_msg(colonyname, "", executorname, count, since, latest), prvkey, _as_list)

    def search_logs(self, colonyname: str, text: str, days: int, count: int, prvkey: str) -> list[JSONDict]:
        """Up to ``count`` log entries of the colony from the last ``days`` days (1..30) that
        contain ``text`` (case-insensitive), newest first."""
        msg = {"msgtype": "searchlogsmsg", "colonyname": colonyname, "text": text, "days": days,
               "count": count}
        return self._invoke(msg, prvkey, _as_list)

    # -- channels (per-process message logs) ----------------------------------------------------

    def channel_append(self, processid: str, name: str, sequence: int, payload: bytes | str, prvkey: str,
                       inreplyto: int = 0, payloadtype: str = "") -> JSONDict:
        """Append an entry to channel ``name`` of a process (its submitter or assigned executor).
        ``sequence`` (> 0) is the client's, one sequence space per channel: repeating an append
        exactly is a harmless retry, another entry with a taken sequence is refused (409).
        A str payload is sent as UTF-8; ``payloadtype`` is "", "data", "end" or "error"."""
        msg = {"msgtype": "channelappendmsg", "processid": processid, "name": name, "sequence": sequence,
               "inreplyto": inreplyto, "payload": channel_payload(payload), "payloadtype": payloadtype}
        return self._invoke(msg, prvkey, _raw)

    def channel_read(self, processid: str, name: str, afterseq: int, limit: int, prvkey: str
                     ) -> list[JSONDict]:
        """Up to ``limit`` (0: all) entries of the channel after sequence ``afterseq``, in sequence
        order, each ``{"sequence", "inreplyto", "timestamp", "senderid", "payload": bytes, "type"}``."""
        msg = {"msgtype": "channelreadmsg", "processid": processid, "name": name, "afterseq": afterseq,
               "limit": limit}
        return self._invoke(msg, prvkey, channel_entries)

    # -- workflows (process graphs) -------------------------------------------------------------

    def submit_workflow(self, workflow: Workflow | JSONDict, prvkey: str) -> ProcessGraph:
        msg = {"msgtype": "submitworkflowspecmsg", "spec": _wire(workflow)}
        return self._invoke(msg, prvkey, ProcessGraph.from_wire)

    def get_processgraph(self, processgraphid: str, prvkey: str) -> ProcessGraph:
        msg = {"msgtype": "getprocessgraphmsg", "processgraphid": processgraphid}
        return self._invoke(msg, prvkey, ProcessGraph.from_wire)

    def get_processgraphs(
        self, colonyname: str, count: int, prvkey: str, state: int | None = None
    ) -> list[JSONDict]:
        """Up to ``count`` graphs, newest first; without ``state`` the server uses 0 (WAITING)."""
        msg: JSONDict = {"msgtype": "getprocessgraphsmsg", "colonyname": colonyname, "count": count}
        if state is not None:
            msg["state"] = state
        return self._invoke(msg, prvkey, _as_list)

    def remove_processgraph(self, processgraphid: str, prvkey: str) -> JSONDict:
        msg = {"msgtype": "removeprocessgraphmsg", "processgraphid": processgraphid}
        return self._invoke(msg, prvkey, _raw)

    def remove_all_processgraphs(self, colonyname: str, prvkey: str, state: int | None = None) -> JSONDict:
        """Remove graphs in ``state`` (colony key); like the reference, omitting ``state`` sends
        none and the server treats it as 0 (WAITING). Pass -1 for every state."""
        msg: JSONDict = {"msgtype": "removeallprocessgraphsmsg", "colonyname": colonyname}
        if state is not None:
            msg["state"] = state
        return self._invoke(msg, prvkey, _raw)

    def add_child(
        self,
        processgraphid: str,
        parentprocessid: str,
        childprocessid: str,
        funcspec: FuncSpec | JSONDict,
        nodename: str,
        insert: bool,
        prvkey: str,
    ) -> JSONDict:
        """Add a process named ``nodename`` below the running parent (signer = its executor).

        With ``insert=True`` the new process takes over the parent's children; otherwise it is
        added beside them and, if ``childprocessid`` is given, becomes a parent of that process.
        Returns the new process as a dict. ``funcspec`` itself is not modified.
        """
        msg = {
            "msgtype": "addchildmsg",
            "processgraphid": processgraphid,
            "parentprocessid": parentprocessid,
            "childprocessid": childprocessid,
            "insert": insert,
            "spec": _spec_with_nodename(funcspec, nodename),
        }
        return self._invoke(msg, prvkey, _raw)

    def _add_children(self, processgraphid: str, parentprocessid: str, childprocessid: str,
                      specs: list[JSONDict], insert: bool, prvkey: str) -> Any:
        msg = {"msgtype": "addchildrenmsg", "processgraphid": processgraphid,
               "parentprocessid": parentprocessid, "childprocessid": childprocessid, "insert": insert,
               "specs": specs}
        return self._invoke(msg, prvkey, _as_list)

    def cancel_processgraph(self, processgraphid: str, prvkey: str) -> JSONDict:
        msg = {"msgtype": "cancelprocessgraphmsg", "processgraphid": processgraphid}
        return self._invoke(msg, prvkey, _raw)

    # -- crons ----------------------------------------------------------------------------------

    def add_cron(
        self,
        cronname: str,
        cronexpr: str,
        wait: bool,
        workflow: Workflow | JSONDict | str,
        colonyname: str,
        prvkey: str,
        interval: int = -1,
        random: bool = False,
    ) -> JSONDict:
        """Run ``workflow`` on a cron expression (6 fields, seconds first; 5 fields; ``@daily``,
        ``@every 10s``, ...), or every ``interval`` seconds when ``interval > 0`` (``cronexpr`` is
        then ignored; with ``random`` each next run is a random delay in [0, interval) s instead).

        Sends ``waitforprevprocessgraph`` (the reference SDK misspells it, so its flag is lost).
        """
        workflowspec = workflow if isinstance(workflow, str) else json.dumps(_wire(workflow))
        cron = {
            "name": cronname,
            "colonyname": colonyname,
            "interval": interval,
            "random": random,
            "waitforprevprocessgraph": wait,
            "cronexpression": cronexpr,
            "workflowspec": workflowspec,
        }
        return self._invoke({"msgtype": "addcronmsg", "cron": cron}, prvkey, _raw)

    def get_cron(self, cronid: str, prvkey: str) -> JSONDict:
        return self._invoke({"msgtype": "getcronmsg", "cronid": cronid}, prvkey, _raw)

    def get_crons(self, colonyname: str, count: int, prvkey: str) -> list[JSONDict]:
        msg = {"msgtype": "getcronsmsg", "colonyname": colonyname, "count": count}
        return self._invoke(msg, prvkey, _as_list)

    def del_cron(self, cronid: str, prvkey: str) -> JSONDict:
        return self._invoke({"msgtype": "removecronmsg", "cronid": cronid, "all": False}, prvkey, _raw)

    def run_cron(self, cronid: str, prvkey: str) -> JSONDict:
        return self._invoke({"msgtype": "runcronmsg", "cronid": cronid}, prvkey, _raw)

    # -- generators -----------------------------------------------------------------------------

    def add_generator(self, generator: JSONDict, prvkey: str) -> JSONDict:
        """Add a generator ``{"colonyname", "name", "workflowspec": <JSON string>, "trigger",
        "timeout"}``."""
        return self._invoke({"msgtype": "addgeneratormsg", "generator": _wire(generator)}, prvkey, _raw)

    def get_generator(self, generatorid: str, prvkey: str) -> JSONDict:
        return self._invoke({"msgtype": "getgeneratormsg", "generatorid": generatorid}, prvkey, _raw)

    def resolve_generator(self, colonyname: str, generatorname: str, prvkey: str) -> JSONDict:
        """The generator named ``generatorname`` in the colony."""
        msg = {"msgtype": "resolvegeneratormsg", "colonyname": colonyname, "generatorname": generatorname}
        return self._invoke(msg, prvkey, _raw)

    def get_generators(self, colonyname: str, prvkey: str, count: int = wire.MAX_COUNT) -> list[JSONDict]:
        msg = {"msgtype": "getgeneratorsmsg", "colonyname": colonyname, "count": count}
        return self._invoke(msg, prvkey, _as_list)

    def pack_generator(self, generatorid: str, arg: str, prvkey: str) -> JSONDict:
        """Queue one argument; the generator submits its workflow once ``trigger`` are queued."""
        msg = {"msgtype": "packgeneratormsg", "generatorid": generatorid, "arg": arg}
        return self._invoke(msg, prvkey, _raw)

    def remove_generator(self, generatorid: str, prvkey: str) -> JSONDict:
        msg = {"msgtype": "removegeneratormsg", "generatorid": generatorid, "all": False}
        return self._invoke(msg, prvkey, _raw)

    # -- files and snapshots (metadata; the bytes are in blob storage) -----------------------------

    def add_file(self, file: File | JSONDict, prvkey: str) -> JSONDict:
        """Record a revision of ``file`` (colonyname, label, name, size, checksum, ref); the server
        gives it its id and sequence number. Credentials in ``ref`` are not stored."""
        return self._invoke({"msgtype": "addfilemsg", "file": _wire(file)}, prvkey, _raw)

    def get_file(
        self,
        colonyname: str,
        prvkey: str,
        label: str | None = None,
        fileid: str | None = None,
        filename: str | None = None,
        latest: bool = True,
    ) -> list[JSONDict]:
        """The file ``fileid``, or the revisions of ``filename`` under ``label`` (only the latest
        when ``latest``): a list, as the reference returns."""
        msg = {**_file_msg("getfilemsg", colonyname, label, fileid, filename), "latest": latest}
        return self._invoke(msg, prvkey, _as_list)

    def get_files(self, label: str, colonyname: str, prvkey: str) -> list[JSONDict]:
        """The latest revision of every file under ``label`` (argument order as the reference's)."""
        msg = {"msgtype": "getfilesmsg", "colonyname": colonyname, "label": label}
        return self._invoke(msg, prvkey, _as_list)

    def get_file_labels(
        self, colonyname: str, prvkey: str, name: str = "", exact: bool = False
    ) -> list[JSONDict]:
        """Labels (with their number of files) starting with ``name``, or exactly ``name``."""
        msg = {"msgtype": "getfilelabelsmsg", "colonyname": colonyname, "name": name, "exact": exact}
        return self._invoke(msg, prvkey, _as_list)

    def remove_file(
        self,
        colonyname: str,
        prvkey: str,
        label: str | None = None,
        fileid: str | None = None,
        filename: str | None = None,
    ) -> JSONDict:
        """Remove the revision ``fileid``, or every revision of ``filename`` under ``label``
        (metadata only; revisions a snapshot holds stay readable through it)."""
        return self._invoke(_file_msg("removefilemsg", colonyname, label, fileid, filename), prvkey, _raw)

    def search_files(
        self,
        colonyname: str,
        prvkey: str,
        label: str = "",
        name: str = "",
        metadata: dict[str, str] | None = None,
        processid: str = "",
        count: int = 100,
    ) -> list[JSONDict]:
        """Revisions, newest first, under ``label`` (and below it), named ``name``, whose metadata
        holds every pair of ``metadata``, produced by ``processid`` (each filter only when given).
        An extension of the reference protocol (``searchfilesmsg``)."""
        msg = {"msgtype": "searchfilesmsg", "colonyname": colonyname, "label": label, "name": name,
               "metadata": dict(metadata or {}), "processid": processid, "count": count}
        return self._invoke(msg, prvkey, _as_list)

    def create_snapshot(self, colonyname: str, label: str, name: str, prvkey: str) -> JSONDict:
        """Freeze the latest revision of every file under ``label`` (and below it) as ``name``."""
        msg = {"msgtype": "createsnapshotmsg", "colonyname": colonyname, "label": label, "name": name}
        return self._invoke(msg, prvkey, _raw)

    def get_snapshot_by_name(self, colonyname: str, name: str, prvkey: str) -> JSONDict:
        msg = {"msgtype": "getsnapshotmsg", "colonyname": colonyname, "snapshotid": "", "name": name}
        return self._invoke(msg, prvkey, _raw)

    def get_snapshot_by_id(self, colonyname: str, snapshotid: str, prvkey: str) -> JSONDict:
        msg = {"msgtype": "getsnapshotmsg", "colonyname": colonyname, "snapshotid": snapshotid, "name": ""}
        return self._invoke(msg, prvkey, _raw)

    def get_snapshots(self, colonyname: str, prvkey: str) -> list[JSONDict]:
        return self._invoke({"msgtype": "getsnapshotsmsg", "colonyname": colonyname}, prvkey, _as_list)

    def remove_snapshot_by_name(self, colonyname: str, name: str, prvkey: str) -> JSONDict:
        msg = {"msgtype": "removesnapshotmsg", "colonyname": colonyname, "snapshotid": "", "name": name}
        return self._invoke(msg, prvkey, _raw)

    def remove_snapshot_by_id(self, colonyname: str, snapshotid: str, prvkey: str) -> JSONDict:
        msg = {"msgtype": "removesnapshotmsg", "colonyname": colonyname, "snapshotid": snapshotid, "name": ""}
        return self._invoke(msg, prvkey, _raw)

    def remove_all_snapshots(self, colonyname: str, prvkey: str) -> JSONDict:
        return self._invoke({"msgtype": "removeallsnapshotmsg", "colonyname": colonyname}, prvkey, _raw)

    # -- server ---------------------------------------------------------------------------------

    def server_version(self) -> JSONDict:
        """``{"buildversion", "buildtime"}`` of the server (unsigned)."""
        msg = {"msgtype": "versionmsg", "buildversion": "", "buildtime": ""}
        return self._invoke(msg, None, _raw)

    def server_info(self) -> JSONDict:
        """Build version/time and listening backends (unsigned)."""
        return self._invoke({"msgtype": "getserverinfomsg"}, None, _raw)

    def server_statistics(self, prvkey: str) -> JSONDict:
        """Server-wide counters (server key)."""
        return self._invoke({"msgtype": "getstatisticsmsg"}, prvkey, _raw)

    def get_cluster(self, prvkey: str) -> JSONDict:
        """The live server processes sharing the database, ``{"nodes": [...], "leader": {...}}``
        (server key)."""
        return self._invoke({"msgtype": "getclustermsg"}, prvkey, _raw)


def _file_msg(msgtype: str, colonyname: str, label: str | None, fileid: str | None, filename: str | None
              ) -> JSONDict:
    """A message naming one file: by ``fileid``, or by ``label`` and ``name``."""
    return {"msgtype": msgtype, "colonyname": colonyname, "fileid": fileid or "", "label": label or "",
            "name": filename or ""}


def _executor_msg(msgtype: str, colonyname: str, executorname: str) -> JSONDict:
    return {"msgtype": msgtype, "colonyname": colonyname, "executorname": executorname}


def _logs_msg(
    colonyname: str, processid: str, executorname: str, count: int, since: int, latest: bool
) -> JSONDict:
    return {
        "msgtype": "getlogsmsg",
        "colonyname": colonyname,
        "processid": processid,
        "executorname": executorname,
        "count": count,
        "since": since,
        "latest": latest,
    }
