"""Long-running signed executors (python, container, Slurm, quantum) built on the pycolonies client.

Executors talk to the server only over the wire, exactly as third-party executors do; they never
import ``server``.
"""
