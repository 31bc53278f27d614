"""The tutorial's basic workflow: gen_nums() returns (1, 2), sum_nums(n1, n2) adds them: 3.

    COLONIES_COLONY_NAME=... COLONIES_PRVKEY=<a member's key> python examples/workflow_gen_sum.py
"""

from pycolonies import Workflow, colonies_client, func_spec

client, colony_name, _, _, prvkey = colonies_client()


def gen_nums(ctx={}):
    return 1, 2


def sum_nums(n1, n2, ctx={}):
    return n1 + n2


def main() -> None:
    wf = Workflow(colonyname=colony_name)
    f1 = func_spec(func=gen_nums, args=[], colonyname=colony_name, executortype="python-executor",
                   maxexectime=100, maxwaittime=100)
    wf.functionspecs.append(f1)
    f2 = func_spec(func=sum_nums, args=[], colonyname=colony_name, executortype="python-executor",
                   maxexectime=100, maxwaittime=100)
    f2.conditions.dependencies.append("gen_nums")
    wf.functionspecs.append(f2)

    processgraph = client.submit_workflow(wf, prvkey)
    print(f"Workflow submitted: {processgraph.processgraphid}")
    last = client.find_process("sum_nums", processgraph.processids, prvkey)
    last = client.wait(last, 100, prvkey)
    print("result:", last.output[0])


if __name__ == "__main__":
    main()
