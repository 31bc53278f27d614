"""Retries: the first attempt of ``flaky`` hangs past its maxexectime (as a crashed or stuck
executor would), the server takes it back and retries it (maxretries=3), and the second attempt
succeeds; ``report`` then receives its output.

    COLONIES_COLONY_NAME=... COLONIES_PRVKEY=<a member's key> python examples/workflow_retries.py
"""

from pycolonies import Workflow, colonies_client, func_spec

client, colony_name, _, _, prvkey = colonies_client()


def flaky(ctx={}):
    import time

    attempt = ctx["process"].retries + 1
    if attempt == 1:
        time.sleep(4)  # longer than maxexectime: the server gives the process to another executor
    return {"attempt": attempt}


def report(result, ctx={}):
    return f"succeeded on attempt {result['attempt']}"


def main() -> None:
    wf = Workflow(colonyname=colony_name)
    wf.functionspecs.append(func_spec(func=flaky, args=[], colonyname=colony_name,
                                      executortype="python-executor", maxexectime=2, maxretries=3,
                                      maxwaittime=60))
    f_report = func_spec(func=report, args=[], colonyname=colony_name, executortype="python-executor",
                         maxexectime=60, maxwaittime=60)
    f_report.conditions.dependencies.append("flaky")
    wf.functionspecs.append(f_report)

    processgraph = client.submit_workflow(wf, prvkey)
    print(f"Workflow submitted: {processgraph.processgraphid}")
    flaky_process = client.find_process("flaky", processgraph.processids, prvkey)
    last = client.wait(client.find_process("report", processgraph.processids, prvkey), 100, prvkey)
    print("retries of flaky:", client.get_process(flaky_process.processid, prvkey).retries)
    print("result:", last.output[0])


if __name__ == "__main__":
    main()
