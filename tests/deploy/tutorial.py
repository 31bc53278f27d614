"""The workflow tutorial's functions (../shared seeds: "Workflows Tutorial") as users paste them:
``ctx={}`` defaults, and ``colonies``/``func_spec`` that the python executor gives the shipped code
as globals. The deployment test ships them to the compose file's executor."""

from pycolonies import Workflow, func_spec


def gen_nums(ctx={}):
    return 1, 2


def sum_nums(n1, n2, ctx={}):
    return n1 + n2


def fetch_a(ctx={}):
    return {"source": "A", "value": 10}


def fetch_b(ctx={}):
    return {"source": "B", "value": 20}


def merge(a, b, ctx={}):
    return a["value"] + b["value"]


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


def workflow(colony_name: str, steps: list[tuple[object, list[str]]]) -> Workflow:
    """A workflow of ``(function, its dependencies)`` steps on python-executor, as the tutorial
    builds them."""
    wf = Workflow(colonyname=colony_name)
    for func, dependencies in steps:
        spec = func_spec(func=func, args=[], colonyname=colony_name, executortype="python-executor",
                         maxexectime=100, maxwaittime=100)
        spec.conditions.dependencies.extend(dependencies)
        wf.functionspecs.append(spec)
    return wf


GEN_SUM = [(gen_nums, []), (sum_nums, ["gen_nums"])]           # result: 3
FAN_IN = [(fetch_a, []), (fetch_b, []), (merge, ["fetch_a", "fetch_b"])]  # result: 30
MAP_REDUCE = [(map, []), (reduce, ["map"])]                     # result: (1+2) * 5 = 15
