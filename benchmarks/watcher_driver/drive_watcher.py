"""Run OpenStack Watcher's ``vm_workload_consolidation`` strategy offline on a given input.

Runs in Watcher's own virtualenv (``.bench-venvs/watcher``, see benchmarks/planner.py), never
in cloudmgr's. Reads a JSON problem on stdin:

    {"host": {"vcpus": 64, "vcpu_ratio": 4.0, "memory_mb": 786432, "disk_gb": 7680},
     "hosts": 200,                       # compute nodes in the model
     "vms": [[vcpus, memory_mb, disk_gb, host_index(, movable 1|0)], ...]}

builds Watcher's in-memory compute data model (a ModelRoot with ComputeNode and Instance
elements, instances mapped to their current node), gives the strategy a datasource that
has no measurements (so Watcher falls back to the flavour sizes: the VMs' allocations, the
same demands cloudmgr packs), runs the strategy's ``execute()`` (pre-execute, offload and
consolidation phases, solution optimisation, disabling unused nodes) and prints JSON:
seconds, nodes still holding instances, migrations, and whether capacities hold.
No cloud, database or message bus is involved.
"""

import json
import logging
import sys
import time


class NoMeasurements:
    """A datasource without data: every query answers None, as an empty Gnocchi would."""

    def __getattr__(self, name):
        if name.startswith("get_"):
            return lambda *args, **kwargs: None
        raise AttributeError(name)


def main():
    problem = json.load(sys.stdin)
    # The strategy warns for every instance that the datasource has no measurement: silence
    # that (it would only time the terminal). Messages are still formatted where Watcher
    # formats them eagerly (e.g. the model dump in pre_execute), as in production.
    logging.disable(logging.WARNING)
    from oslo_config import cfg

    cfg.CONF([], project="watcher", default_config_files=[])

    from watcher.decision_engine.model import element, model_root
    from watcher.decision_engine.strategy import strategies

    host = problem["host"]
    model = model_root.ModelRoot()
    nodes = []
    for h in range(problem["hosts"]):
        node = element.ComputeNode(
            id=h,
            uuid=f"node-{h:06d}",
            hostname=f"host-{h:06d}",
            state=element.ServiceState.ONLINE.value,
            status=element.ServiceState.ENABLED.value,
            vcpus=host["vcpus"],
            vcpu_reserved=0,
            vcpu_ratio=float(host["vcpu_ratio"]),
            memory=host["memory_mb"],
            memory_mb_reserved=0,
            memory_ratio=1.0,
            disk=host["disk_gb"],
            disk_gb_reserved=0,
            disk_ratio=1.0,
        )
        model.add_node(node)
        nodes.append(node)
    for i, (vcpus, memory, disk, h, *movable) in enumerate(problem["vms"]):
        # a fifth element 0: a VM that may not move (ERROR, a task under way): Watcher
        # proposes no migration of an instance that is neither active, paused nor stopped
        state = element.InstanceState.ACTIVE if not movable or movable[0] else element.InstanceState.ERROR
        inst = element.Instance(
            uuid=f"vm-{i:08d}",
            name=f"vm-{i:08d}",
            state=state.value,
            vcpus=vcpus,
            memory=memory,
            disk=disk,
            project_id="91fffe30-78a0-4152-acd2-8310ff274dc9",
        )
        model.add_instance(inst)
        model.map_instance(inst, nodes[h])

    strategy = strategies.VMWorkloadConsolidation(config=_Config())
    strategy._compute_model = model  # the model the collector would have built
    strategy._datasource_backend = NoMeasurements()
    started = time.perf_counter()
    solution = strategy.execute()
    seconds = time.perf_counter() - started

    used = 0
    ok = True
    for node in nodes:
        instances = model.get_node_instances(node)
        if instances:
            used += 1
        v = sum(x.vcpus for x in instances)
        m = sum(x.memory for x in instances)
        d = sum(x.disk for x in instances)
        if v > node.vcpu_capacity or m > node.memory_mb_capacity or d > node.disk_gb_capacity:
            ok = False
    migrations = sum(1 for a in solution.actions if a["action_type"] == "migrate")
    json.dump(
        {
            "seconds": seconds,
            "hosts_used": used,
            "migrations": migrations,
            "capacity_ok": ok,
            "watcher_version": _version(),
        },
        sys.stdout,
    )
    sys.stdout.write("\n")


class _Config:
    datasources = None
    check_optimize_metadata = False


def _version():
    try:
        from importlib.metadata import version

        return version("python-watcher")
    except Exception:
        return "unknown"


if __name__ == "__main__":
    main()
