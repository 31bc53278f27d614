"""Five-minute quickstart: create a colony, register an executor, submit, assign, close.

Start a server first (``colonies server start``), then:

    export COLONIES_SERVER_PRVKEY=$(cat ~/.colonies/server.prvkey)
    python examples/quickstart.py
"""

from __future__ import annotations

import os

from pycolonies import Colonies, Crypto, func_spec


def main() -> None:
    host = os.environ.get("COLONIES_SERVER_HOST", "localhost")
    port = int(os.environ.get("COLONIES_SERVER_PORT", "50080"))
    server_prvkey = os.environ["COLONIES_SERVER_PRVKEY"]

    client = Colonies(host, port, tls=False)
    crypto = Crypto()

    # 1. The server owner creates a colony; the colony key owns it.
    colony_prvkey = crypto.prvkey()
    colonyname = "quickstart-" + crypto.id(colony_prvkey)[:8]
    client.add_colony({"colonyid": crypto.id(colony_prvkey), "name": colonyname}, server_prvkey)

    # 2. The colony owner registers and approves an executor with its own key.
    executor_prvkey = crypto.prvkey()
    client.add_executor(
        {
            "executorid": crypto.id(executor_prvkey),
            "executorname": "echo-executor",
            "executortype": "echo",
            "colonyname": colonyname,
        },
        colony_prvkey,
    )
    client.approve_executor(colonyname, "echo-executor", colony_prvkey)

    # 3. A member submits a function spec.
    spec = func_spec(func="echo", args=["hello", {"n": 42}], colonyname=colonyname, executortype="echo",
                     maxexectime=60)
    submitted = client.submit_func_spec(spec, executor_prvkey)
    print("submitted", submitted.processid)

    # 4. The executor long-polls for work, runs it, and closes it with its output.
    process = client.assign(colonyname, 10, executor_prvkey)
    client.add_log(process.processid, "echoing\n", executor_prvkey)
    client.close(process.processid, process.spec.args, executor_prvkey)

    # 5. Anyone in the colony reads the result.
    done = client.get_process(submitted.processid, executor_prvkey)
    print("state", done.state, "output", done.output)
    client.del_colony(colonyname, server_prvkey)


if __name__ == "__main__":
    main()
