"""The tutorial's MapReduce: map adds five gen_nums children at run time, reduce sums them: 15.

The map step runs on the executor, where ``colonies`` (a connected client) and ``func_spec`` are
globals, exactly as in the tutorial.

    COLONIES_COLONY_NAME=... COLONIES_PRVKEY=<a member's key> python examples/workflow_mapreduce.py
"""

from pycolonies import Workflow, colonies_client, func_spec

client, colony_name, _, _, prvkey = colonies_client()


def map(ctx={}):
    code = '''def gen_nums(ctx={}):
    return 1, 2'''

    processgraphid = ctx["process"].processgraphid
    map_processid = ctx["process"].processid
    executor_prvkey = ctx["executor_prvkey"]

    # Get the processgraph
    processgraph = colonies.get_processgraph(processgraphid, executor_prvkey)

    # Find the reduce process
    reduce_process = colonies.find_process("reduce", processgraph.processids, executor_prvkey)
    reduce_processid = reduce_process.processid

    # Add child processes dynamically
    insert = True
    for i in range(5):
        f = func_spec(
            func="gen_nums",
            args=[],
            colonyname=ctx["colonyname"],
            executortype="python-executor",
            maxexectime=100,
            maxwaittime=100,
            code=code
        )
        colonies.add_child(
            processgraphid,
            map_processid,
            reduce_processid,
            f,
            f"gen_nums_{i}",
            insert,
            executor_prvkey
        )
        insert = False


def reduce(*nums, ctx={}):
    total = 0
    for n in nums:
        total += n
    return total


def main() -> None:
    wf = Workflow(colonyname=colony_name)
    f_map = func_spec(func=map, args=[], colonyname=colony_name, executortype="python-executor",
                      maxexectime=100, maxwaittime=100)
    wf.functionspecs.append(f_map)
    f_reduce = func_spec(func=reduce, args=[], colonyname=colony_name, executortype="python-executor",
                         maxexectime=100, maxwaittime=100)
    f_reduce.conditions.dependencies.append("map")
    wf.functionspecs.append(f_reduce)

    processgraph = client.submit_workflow(wf, prvkey)
    print(f"Workflow submitted: {processgraph.processgraphid}")
    last = client.wait(client.find_process("reduce", processgraph.processids, prvkey), 100, prvkey)
    print("result:", last.output[0])  # (1+2) * 5 = 15


if __name__ == "__main__":
    main()
