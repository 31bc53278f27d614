"""Two parallel fetchers feed a merge: fetch_a and fetch_b return dicts, merge adds their values: 30.

    COLONIES_COLONY_NAME=... COLONIES_PRVKEY=<a member's key> python examples/workflow_fan_in.py
"""

from pycolonies import Workflow, colonies_client, func_spec

client, colony_name, _, _, prvkey = colonies_client()


def fetch_a(ctx={}):
    return {"source": "A", "value": 10}


def fetch_b(ctx={}):
    return {"source": "B", "value": 20}


def merge(a, b, ctx={}):
    return a["value"] + b["value"]


def main() -> None:
    wf = Workflow(colonyname=colony_name)
    f_a = func_spec(func=fetch_a, args=[], colonyname=colony_name,
                    executortype="python-executor", maxexectime=60, maxwaittime=60)
    wf.functionspecs.append(f_a)
    f_b = func_spec(func=fetch_b, args=[], colonyname=colony_name,
                    executortype="python-executor", maxexectime=60, maxwaittime=60)
    wf.functionspecs.append(f_b)
    f_merge = func_spec(func=merge, args=[], colonyname=colony_name,
                        executortype="python-executor", maxexectime=60, maxwaittime=60)
    f_merge.conditions.dependencies.append("fetch_a")
    f_merge.conditions.dependencies.append("fetch_b")
    wf.functionspecs.append(f_merge)

    processgraph = client.submit_workflow(wf, prvkey)
    print(f"Workflow submitted: {processgraph.processgraphid}")
    last = client.wait(client.find_process("merge", processgraph.processids, prvkey), 100, prvkey)
    print("result:", last.output[0])


if __name__ == "__main__":
    main()
