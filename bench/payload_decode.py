"""What the payload checks (server.payload.load_json) cost beside plain json.loads.

    python bench/payload_decode.py [--rounds 7]

Decodes a typical submitfuncspecmsg payload (as our SDK sends it) and a deep but legal one,
interleaving the two decoders in each round, and prints the median and range in microseconds.
"""

from __future__ import annotations

import argparse
import json
import statistics
import timeit

from server.payload import load_json

TYPICAL = {
    "msgtype": "submitfuncspecmsg", "requestnonce": "ab" * 16, "requesttime": 1,
    "spec": {"nodename": "n", "funcname": "echo", "args": ["a", 1], "kwargs": {"k": [1, {"x": "y"}]},
             "priority": 0, "maxwaittime": -1, "maxexectime": -1, "maxretries": 0,
             "conditions": {"colonyname": "dev", "executortype": "t", "executornames": [],
                            "dependencies": [], "cpu": "100m", "mem": "10Mi", "gpu": {"count": 0}},
             "label": "", "fs": {"mount": "", "dirs": []}, "env": {"E": "1"}},
}


def _reject(name: str) -> None:
    raise ValueError(name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--number", type=int, default=20_000)
    args = parser.parse_args()
    deep = dict(TYPICAL, spec=dict(TYPICAL["spec"], args=[[[[[[[[[[i]]]]]]]]] for i in range(20)]))
    cases = {"typical": json.dumps(TYPICAL).encode(), "120 brackets": json.dumps(deep).encode()}
    for name, raw in cases.items():
        plain: list[float] = []
        checked: list[float] = []
        for _ in range(args.rounds):
            plain.append(timeit.timeit(lambda raw=raw: json.loads(raw, parse_constant=_reject),
                                       number=args.number) / args.number * 1e6)
            checked.append(timeit.timeit(lambda raw=raw: load_json(raw),
                                         number=args.number) / args.number * 1e6)
        for label, values in (("json.loads", plain), ("load_json", checked)):
            print(f"{name:>13} {label:>10}: median {statistics.median(values):6.2f} us "
                  f"(range {min(values):.2f}-{max(values):.2f}) for {len(raw)} bytes")


if __name__ == "__main__":
    main()
