"""Fills the scale cloud with servers, booted through Nova's API (run by scale.sh).

    scale_fill.py fill TOTAL [--seed N]   boot until the cloud holds TOTAL servers
    scale_fill.py count                    servers by status, and how they spread

The servers are spread unevenly over the hypervisors (many nearly empty, some full,
as departments' clouds are before consolidation): each node's share is drawn from a
skewed distribution (seeded, so every fill makes the same layout), each server is
pinned to its node with the admin-only ``nova:HOST:NODE`` availability zone, and
they are booted with multi-create, one call per (node, flavor, network) group.
About 45 % have a Neutron port on ``scale-net`` (a /16: the lab's other networks
are /24s), the rest boot with ``networks="none"`` (Nova boots those ~2x faster).
They belong to five projects (scale-p1 ... scale-p5, 500 each at 2,500), so a
benchmark can compare one project's listing with everyone's.

At most MAX_BUILDING servers are building at once: more only queues them in
Nova's conductor and makes every API call slower.

Connection settings come from the environment set by scale.sh (LAB_*).
"""

import collections
import concurrent.futures
import os
import random
import sys
import threading
import time

E = os.environ
AUTH_URL = E["LAB_AUTH_URL"]
REGION = E["LAB_REGION"]
ADMIN_PASSWORD = E["LAB_ADMIN_PASSWORD"]
HOSTS = E["COMPUTE_HOSTS"].split()
NODES = int(E["LAB_SCALE_NODES"])

PROJECTS = [f"scale-p{i}" for i in range(1, 6)]
NETWORK = ("scale-net", "tenant", "10.64.0.0/16")
# name, share of the servers
FLAVOR_MIX = [("m1.tiny", 30), ("m1.small", 40), ("m1.medium", 25), ("m1.large", 5)]
PORT_SHARE = 0.45
MAX_BUILDING = int(E.get("LAB_SCALE_MAX_BUILDING", "400"))
API_THREADS = 3


def log(msg):
    print(f"[scale {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def connect(project="admin"):
    import openstack

    return openstack.connect(
        auth_url=AUTH_URL,
        username="admin",
        password=ADMIN_PASSWORD,
        project_name=project,
        user_domain_name="Default",
        project_domain_name="Default",
        region_name=REGION,
        identity_api_version="3",
        compute_api_version="2.95",
    )


def node_names():
    return [f"{h}-n{i:03d}" for h in HOSTS for i in range(NODES)]


def layout(total, seed):
    """{node: count}: a skewed spread summing to total (a third of the nodes hold
    little, a few hold many), none above what a node holds at the mix's average."""
    rng = random.Random(seed)
    nodes = node_names()
    weights = [rng.lognormvariate(0, 1.1) for _ in nodes]
    scale = total / sum(weights)
    counts = {n: min(int(w * scale), 60) for n, w in zip(nodes, weights, strict=True)}
    # hand out what rounding and the cap left, to random nodes below the cap
    left = total - sum(counts.values())
    while left > 0:
        n = rng.choice(nodes)
        if counts[n] < 60:
            counts[n] += 1
            left -= 1
    return counts


def groups(counts, seed):
    """Boot calls: (node, project, flavor, with_port, how many), in random order."""
    rng = random.Random(seed + 1)
    names = [f for f, _ in FLAVOR_MIX]
    shares = [s for _, s in FLAVOR_MIX]
    calls = []
    for i, (node, count) in enumerate(sorted(counts.items())):
        left = count
        while left > 0:
            size = min(left, rng.randint(1, 8))
            calls.append(
                (
                    node,
                    PROJECTS[(i + len(calls)) % len(PROJECTS)],
                    rng.choices(names, shares)[0],
                    rng.random() < PORT_SHARE,
                    size,
                )
            )
            left -= size
    rng.shuffle(calls)
    return calls


def prepare(conn):
    """Projects with unlimited quotas, the network, the flavor and image ids."""
    identity = conn.identity
    admin_role = identity.find_role("admin")
    admin_user = identity.find_user("admin", domain_id="default")
    projects = {}
    for name in [*PROJECTS, "admin"]:
        project = identity.find_project(name, domain_id="default")
        if project is None:
            project = identity.create_project(name=name, domain_id="default", description="scale cloud servers")
        identity.assign_project_role_to_user(project, admin_user, admin_role)
        projects[name] = project.id
        conn.compute.update_quota_set(project.id, instances=-1, cores=-1, ram=-1)
        conn.network.update_quota(project.id, port=-1, network=-1, subnet=-1)
    net = conn.network.find_network(NETWORK[0])
    if net is None:
        net = conn.network.create_network(
            name=NETWORK[0],
            shared=True,
            provider_network_type="vlan",
            provider_physical_network=NETWORK[1],
            provider_segmentation_id=1500,
        )
        conn.network.create_subnet(
            network_id=net.id, ip_version=4, cidr=NETWORK[2], enable_dhcp=False, name=NETWORK[0] + "-subnet"
        )
    flavors = {f.name: f.id for f in conn.compute.flavors()}
    image = next(i for i in conn.image.images() if i.name == "cirros-lab")
    return projects, net.id, flavors, image.id


def building_count(conn):
    return sum(1 for _ in conn.compute.servers(all_projects=True, status="BUILD", details=False))


def server_count(conn):
    return sum(1 for _ in conn.compute.servers(all_projects=True, details=False))


def cmd_fill(total, seed=20):
    conn = connect()
    projects, net_id, flavors, image_id = prepare(conn)
    have = server_count(conn)
    if have >= total:
        log(f"the cloud holds {have} servers (wanted {total}): nothing to boot")
        return 0
    if have:
        # a fill that stopped: boot what is missing, spread the same way
        log(f"the cloud holds {have} servers: booting {total - have} more")
    calls = groups(layout(total - have, seed + have), seed + have)
    project_conns = {}
    lock = threading.Lock()
    booted = collections.Counter()
    errors = []

    def conn_for(project):
        with lock:
            if project not in project_conns:
                project_conns[project] = connect(project)
            return project_conns[project]

    def boot(call):
        node, project, flavor, with_port, size = call
        c = conn_for(project)
        attrs = dict(
            name=f"scale-{node[-4:]}-{flavor[3:]}",
            flavor_id=flavors[flavor],
            image_id=image_id,
            availability_zone=f"nova:{node.rsplit('-', 1)[0]}:{node}",
            networks=[{"uuid": net_id}] if with_port else "none",
            min_count=size,
            max_count=size,
            metadata={"scale_node": node, "scale_port": "yes" if with_port else "no"},
        )
        for attempt in range(5):
            try:
                c.compute.create_server(**attrs)
                with lock:
                    booted["with port" if with_port else "no port"] += size
                return
            except Exception as exc:  # a lab filler: retry, then report
                if attempt == 4:
                    errors.append(f"{node} {flavor} x{size}: {exc}")
                time.sleep(2 + attempt * 3)

    t0 = time.monotonic()
    queued = 0
    with concurrent.futures.ThreadPoolExecutor(API_THREADS) as pool:
        i = 0
        while i < len(calls):
            building = building_count(conn)
            room = MAX_BUILDING - building
            if room <= 0:
                time.sleep(5)
                continue
            batch = []
            while i < len(calls) and room > 0:
                batch.append(calls[i])
                room -= calls[i][4]
                i += 1
            list(pool.map(boot, batch))
            queued += sum(c[4] for c in batch)
            log(f"{queued}/{total - have} asked ({dict(booted)}), {building} building, {time.monotonic() - t0:.0f} s")
    deadline = time.monotonic() + 1800
    while time.monotonic() < deadline:
        building = building_count(conn)
        log(f"{server_count(conn)} servers, {building} building, {time.monotonic() - t0:.0f} s")
        if building == 0:
            break
        time.sleep(15)
    # A server the scheduler could not place while the lab was saturated (a Placement
    # connection reset, say) is deleted and booted again on its node, up to 3 times.
    for _ in range(3):
        failed = list(conn.compute.servers(all_projects=True, status="ERROR"))
        if not failed:
            break
        log(
            f"{len(failed)} in ERROR ({failed[0].fault.get('message') if failed[0].fault else '?'}): booting them again"
        )
        for server in failed:
            conn.compute.delete_server(server, ignore_missing=True)
        for server in failed:
            conn.compute.wait_for_delete(server, wait=300)
        again = [
            (
                s.metadata.get("scale_node"),
                next(p for p, i in projects.items() if i == s.project_id),
                s.flavor.name,
                s.metadata.get("scale_port") == "yes",
                1,
            )
            for s in failed
        ]
        with concurrent.futures.ThreadPoolExecutor(API_THREADS) as pool:
            list(pool.map(boot, again))
        while building_count(conn):
            time.sleep(5)
    elapsed = time.monotonic() - t0
    counts = status_counts(conn)
    log(f"filled in {elapsed:.0f} s: {counts}; API errors: {len(errors)}")
    for e in errors[:10]:
        log(f"  {e}")
    return 0 if counts.get("ACTIVE", 0) >= total * 0.99 and not errors else 1


def status_counts(conn):
    counts = collections.Counter()
    for s in conn.compute.servers(all_projects=True, details=True, limit=1000):
        counts[s.status] += 1
    return dict(counts)


def cmd_count():
    conn = connect()
    per_node = collections.Counter()
    counts = collections.Counter()
    ports = 0
    for s in conn.compute.servers(all_projects=True, details=True, limit=1000):
        counts[s.status] += 1
        per_node[s.hypervisor_hostname] += 1
        ports += bool(s.addresses)
    used = sorted(per_node.values())
    nodes = len(node_names())
    print(f"servers: {sum(counts.values())} {dict(counts)}; with a port: {ports}")
    if used:
        print(
            f"hypervisors used: {len(used)} of {nodes}; servers per used one: "
            f"min {used[0]}, median {used[len(used) // 2]}, max {used[-1]}"
        )
    return 0


def main(argv):
    if len(argv) >= 2 and argv[0] == "fill":
        return cmd_fill(int(argv[1]), *(int(a) for a in argv[2:3]))
    if argv == ["count"]:
        return cmd_count()
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
