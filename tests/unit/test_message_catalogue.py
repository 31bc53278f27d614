"""Every message type of the reference protocol is served (docs/protocol.md#message-coverage):
the RPC types by a handler, the realtime ones on /pubsub. A type that a change drops fails here."""

from __future__ import annotations

from server.handlers import routing_table
from server.realtime import feeds

# The reference's RPC message types (its protocol catalogue, §5 of the shared reference), and the
# node messages it defines without serving them.
REFERENCE_RPC = {
    "addattributemsg", "addblueprintdefinitionmsg", "addblueprintmsg", "addchildmsg", "addcolonymsg",
    "addcronmsg", "addexecutorlogmsg", "addexecutormsg", "addfilemsg", "addfunctionmsg",
    "addgeneratormsg", "addlocationmsg", "addlogmsg", "addusermsg", "approveexecutormsg",
    "assignprocessmsg", "cancelprocessgraphmsg", "cancelprocessmsg", "changecolonyidmsg",
    "changeexecutoridmsg", "changeserveridmsg", "changeuseridmsg", "channelappendmsg", "channelreadmsg",
    "closefailedmsg", "closesuccessfulmsg", "createsnapshotmsg", "getattributemsg",
    "getblueprintdefinitionmsg", "getblueprintdefinitionsmsg", "getblueprinthistorymsg",
    "getblueprintmsg", "getblueprintsmsg", "getclustermsg", "getcoloniesmsg", "getcolonymsg",
    "getcolonystatsmsg", "getcronmsg", "getcronsmsg", "getexecutorbyidmsg", "getexecutormsg",
    "getexecutorsmsg", "getfilelabelsmsg", "getfilemsg", "getfilesmsg", "getfunctionsmsg",
    "getgeneratormsg", "getgeneratorsmsg", "getlocationmsg", "getlocationsmsg", "getlogsmsg",
    "getpausestatusmsg", "getprocessesmsg", "getprocessgraphmsg", "getprocessgraphsmsg",
    "getprocesshistmsg", "getprocessmsg", "getserverinfomsg", "getsnapshotmsg", "getsnapshotsmsg",
    "getstatisticsmsg", "getuserbyidmsg", "getusermsg", "getusersmsg", "packgeneratormsg",
    "pauseassignmentsmsg", "reconcileblueprintmsg", "rejectexecutormsg", "removeallprocessesmsg",
    "removeallprocessgraphsmsg", "removeallsnapshotmsg", "removeblueprintdefinitionmsg",
    "removeblueprintmsg", "removecolonymsg", "removecronmsg", "removeexecutormsg", "removefilemsg",
    "removefunctionmsg", "removegeneratormsg", "removelocationmsg", "removeprocessgraphmsg",
    "removeprocessmsg", "removesnapshotmsg", "removeusermsg", "reportallocationmsg",
    "resolvegeneratormsg", "resumeassignmentsmsg", "runcronmsg", "searchlogsmsg", "setoutputmsg",
    "submitfuncspecmsg", "submitworkflowspecmsg", "updateblueprintmsg", "updateblueprintstatusmsg",
    "updateexecutormsg", "versionmsg",
    "getnodemsg", "getnodesmsg", "getnodesbylocationmsg",
}
REFERENCE_PUBSUB = {"subscribeprocessmsg", "subscribeprocessesmsg", "subscribechannelmsg"}


def test_every_reference_rpc_type_has_a_handler() -> None:
    assert sorted(REFERENCE_RPC - set(routing_table())) == []


def test_every_reference_realtime_type_is_served_on_pubsub() -> None:
    assert sorted(REFERENCE_PUBSUB - set(feeds.PAYLOADTYPES)) == []
