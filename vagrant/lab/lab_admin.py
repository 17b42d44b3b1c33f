"""Lab administration helper, run with the lab venv's python by up.sh/status.sh.

Subcommands:
  wait-keystone TIMEOUT [PID]  wait until the admin user gets a token
  keystone                create the service project, users, roles, catalog
  catalog-id              print a digest of what `keystone` makes (up.sh
                          re-runs it when the digest it recorded differs)
  wait-http NAME URL TIMEOUT [PID]  wait until URL answers (HTTP status < 500)
  wait-placement TIMEOUT  wait until compute1/compute2 providers have inventory
  resources               flavors, the cirros-lab image, volume types, lab
                          networks, lab-public (external) and lab-router
  clouds-yaml PATH        write the clouds.yaml for the tests (every cloud of
                          the lab: LAB_CLOUD_ENTRIES, made by common.sh)
  status [--without-cinder]
                          check every service; exit 0 iff all respond
  finish PATH             wait-placement, resources, clouds-yaml, status
  amqp-ok                 exit 0 iff LAB_TRANSPORT_URL accepts a login
  wait-consumers TIMEOUT PID QUEUE...
                          wait until each RabbitMQ queue has a consumer
  wait-computes TIMEOUT HOST=PID...
                          wait until each compute listens on its queue and
                          then heartbeats (nova services.updated_at)
  wait-steady TIMEOUT SECONDS HOST...
                          wait until each compute's heartbeat has kept
                          coming for SECONDS (after a restart with many servers)
  disk-path SERVER_ID     print the file holding a server's disk (either cloud)
  volume-path VOLUME_ID   print the file holding a volume's bytes (either cloud)

Connection settings come from the environment set by common.sh (LAB_*), for
the one cloud (LAB_INSTANCE) that up.sh or status.sh works on.

Where the bytes are (LAB = CLOUDMGR_LAB_DIR, default <repo>/.lab; the city's
state dir is LAB/city):
  server disks   LAB/data/disks/<server id>.img       (province)
                 LAB/city/data/disks/<server id>.img  (city)
  volumes        LAB/data/cinder/lab-volumes/volume-<volume id>
                 LAB/city/data/cinder/lab-volumes/volume-<volume id>
"""

import datetime
import os
import sys
import time

import requests

E = os.environ
HOST = "127.0.0.1"
AUTH_URL = E.get("LAB_AUTH_URL", f"http://{HOST}:5000/v3")
REGION = E.get("LAB_REGION", "RegionOne")
ADMIN_PASSWORD = E.get("LAB_ADMIN_PASSWORD", "cloudmgr-lab-admin")
SERVICE_PASSWORD = E.get("LAB_SERVICE_PASSWORD", "cloudmgr-lab-service")
COMPUTE_HOSTS = E.get("COMPUTE_HOSTS", "compute1 compute2").split()
# The scale cloud's compute serves many nodes (<host>-n000...): those are its
# hypervisors and Placement's providers; elsewhere a node is named as its host.
SCALE_NODES = int(E.get("LAB_SCALE_NODES") or 0)
COMPUTE_NODES = ([f"{h}-n{i:03d}" for h in COMPUTE_HOSTS for i in range(SCALE_NODES)]
                 if SCALE_NODES else COMPUTE_HOSTS)

SERVICES = [
    # user, service name, type, url, description
    ("placement", "placement", "placement",
     f"http://{HOST}:{E.get('LAB_PLACEMENT_PORT', '8778')}", "Placement"),
    ("nova", "nova", "compute",
     f"http://{HOST}:{E.get('LAB_NOVA_PORT', '8774')}/v2.1", "Compute"),
    ("glance", "glance", "image",
     f"http://{HOST}:{E.get('LAB_GLANCE_PORT', '9292')}", "Image"),
    ("neutron", "neutron", "network",
     f"http://{HOST}:{E.get('LAB_NEUTRON_PORT', '9696')}", "Networking"),
    ("cinder", "cinderv3", "volumev3",
     f"http://{HOST}:{E.get('LAB_CINDER_PORT', '8776')}/v3", "Block Storage"),
]

# Both on the lab's one backend ("fake", cinder.conf [fake]); two types so
# that operators can offer typed volumes with prices. "fake" is the
# default_volume_type of cinder.conf.
VOLUME_BACKEND = "fake"
VOLUME_TYPES = [
    # name, description
    ("fake", "Lab volumes (the default type)"),
    ("ssd", "Lab SSD volumes (same fake backend)"),
]
# made by cinder's db sync; unused once default_volume_type is set
CINDER_DB_SYNC_TYPE = "__DEFAULT__"

FLAVORS = [
    # name, vcpus, ram MB, disk GB
    ("m1.tiny", 1, 512, 1),
    ("m1.small", 1, 2048, 20),
    ("m1.medium", 2, 4096, 40),
    ("m1.large", 4, 8192, 80),
]

NETWORKS = [
    # name, physnet, cidr, gateway, description
    ("lab-internet", "internet", "203.0.113.0/24", "203.0.113.1",
     "Lab zone: Internet"),
    ("lab-extranet", "extranet", "198.51.100.0/24", "198.51.100.1",
     "Lab zone: e-government extranet"),
]

# Where floating IPs come from: an external network and a router whose
# gateway is on it, with an interface on each subnet of NETWORKS (Neutron
# gives a port a floating IP only through such a router). The router plugin
# runs without an L3 agent: the API is all the lab needs.
PUBLIC_NETWORK = ("lab-public", "public", "192.0.2.0/24",
                  "Lab: public addresses (floating IPs)")
ROUTER_NAME = "lab-router"

IMAGE_NAME = "cirros-lab"


def log(msg):
    print(f"[lab-admin {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def connect():
    import openstack
    return openstack.connect(
        auth_url=AUTH_URL, username="admin", password=ADMIN_PASSWORD,
        project_name="admin", user_domain_name="Default",
        project_domain_name="Default", region_name=REGION,
        identity_api_version="3", compute_api_version="2.95")


def token():
    body = {"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": "admin", "domain": {"name": "Default"},
            "password": ADMIN_PASSWORD}}},
        "scope": {"project": {"name": "admin",
                              "domain": {"name": "Default"}}}}}
    r = requests.post(AUTH_URL + "/auth/tokens", json=body, timeout=10)
    r.raise_for_status()
    return r.headers["X-Subject-Token"]


def wait_for(what, fn, timeout, interval=1.0, pid=None):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if pid is not None and not _alive(pid):
            raise SystemExit(f"process {pid} exited while waiting for {what}")
        try:
            res = fn()
            if res:
                return res
        except Exception as exc:  # noqa: BLE001 - report the last failure
            last = exc
        time.sleep(interval)
    raise SystemExit(f"timeout after {timeout}s waiting for {what}"
                     + (f": {last!r}" if last else ""))


def cmd_wait_keystone(timeout, pid=None):
    wait_for("a keystone token", token, float(timeout), 0.5, pid)
    log("keystone issues tokens")


def cmd_wait_http(name, url, timeout, pid=None):
    def ok():
        return requests.get(url, timeout=5).status_code < 500
    wait_for(f"{name} at {url}", ok, float(timeout), 0.5, pid)


def _password_ok(user):
    body = {"auth": {"identity": {"methods": ["password"], "password": {
        "user": {"name": user, "domain": {"name": "Default"},
                 "password": SERVICE_PASSWORD}}}}}
    r = requests.post(AUTH_URL + "/auth/tokens", json=body, timeout=10)
    return r.status_code == 201


def cmd_keystone():
    conn = connect()
    idn = conn.identity
    domain = idn.find_domain("Default") or idn.find_domain("default")
    project = idn.find_project("service", domain_id=domain.id)
    if not project:
        project = idn.create_project(name="service", domain_id=domain.id,
                                     description="Lab service project")
    roles = {}
    for rname in ("admin", "service", "member", "reader"):
        role = idn.find_role(rname)
        if not role:
            role = idn.create_role(name=rname)
        roles[rname] = role
    for user_name, svc_name, svc_type, url, desc in SERVICES:
        user = idn.find_user(user_name, domain_id=domain.id)
        if not user:
            user = idn.create_user(name=user_name, domain_id=domain.id,
                                   password=SERVICE_PASSWORD,
                                   default_project_id=project.id)
        elif not _password_ok(user_name):
            idn.update_user(user, password=SERVICE_PASSWORD)
        for rname in ("admin", "service"):
            idn.assign_project_role_to_user(project, user, roles[rname])
        svc = next((s for s in idn.services() if s.type == svc_type), None)
        if not svc:
            svc = idn.create_service(name=svc_name, type=svc_type,
                                     description=desc, is_enabled=True)
        have = {e.interface: e for e in idn.endpoints(service_id=svc.id)}
        for iface in ("public", "internal"):
            ep = have.get(iface)
            if ep and ep.url == url and ep.region_id == REGION:
                continue
            if ep:
                idn.delete_endpoint(ep)
            idn.create_endpoint(service_id=svc.id, interface=iface, url=url,
                                region_id=REGION, is_enabled=True)
    log("keystone: service project, users, roles and catalog ready")


def cmd_catalog_id():
    import hashlib
    print(hashlib.sha256(repr((SERVICES, REGION)).encode()).hexdigest()[:16])


def providers_ready():
    conn = connect()
    placement = conn.placement
    names = {}
    for rp in placement.resource_providers():
        names[rp.name] = rp
    if any(node not in names for node in COMPUTE_NODES):
        return False
    # (a sample of the scale cloud's 200: one GET each)
    for node in COMPUTE_NODES[:2] + COMPUTE_NODES[-1:]:
        inv = {i.resource_class: i for i in
               placement.resource_provider_inventories(names[node])}
        if "VCPU" not in inv or "MEMORY_MB" not in inv:
            return False
    return True


def cmd_wait_placement(timeout):
    wait_for("compute providers with inventory in placement",
             providers_ready, float(timeout), 1.0)
    log("placement: compute providers have inventory")


def cmd_resources():
    conn = connect()
    t0 = time.monotonic()
    have = {f.name: f for f in conn.compute.flavors(is_public=None)}
    for name, vcpus, ram, disk in FLAVORS:
        f = have.get(name)
        if f and (f.vcpus, f.ram, f.disk) == (vcpus, ram, disk):
            continue
        if f:
            conn.compute.delete_flavor(f)
        conn.compute.create_flavor(name=name, vcpus=vcpus, ram=ram,
                                   disk=disk, is_public=True)
        log(f"flavor {name} created")

    images = [i for i in conn.image.images() if i.name == IMAGE_NAME]
    good = [i for i in images if i.status == "active"]
    for img in images:
        if img not in good[:1]:
            conn.image.delete_image(img)
    if not good:
        # a small raw disk made locally: a label then zeros (1 MiB)
        label = b"cloudmgr lab image - not bootable\n"
        data = label + b"\0" * (1024 * 1024 - len(label))
        img = conn.image.create_image(
            name=IMAGE_NAME, disk_format="raw", container_format="bare",
            visibility="public", data=data, validate_checksum=False,
            wait=True, timeout=120)
        img = conn.image.get_image(img.id)
        if img.status != "active":
            raise SystemExit(f"image {IMAGE_NAME} is {img.status}")
        log(f"image {IMAGE_NAME} uploaded ({img.size} bytes)")

    bs = conn.block_storage
    types = {t.name: t for t in bs.types()}
    for name, desc in VOLUME_TYPES:
        if name not in types:
            bs.create_type(name=name, description=desc, is_public=True,
                           extra_specs={"volume_backend_name":
                                        VOLUME_BACKEND})
            log(f"volume type {name} created")
    sync_type = types.get(CINDER_DB_SYNC_TYPE)
    if sync_type:
        # else operators see it among the types they may offer; Cinder
        # refuses while volumes use it (then it stays, harmless)
        try:
            bs.delete_type(sync_type)
            log(f"volume type {CINDER_DB_SYNC_TYPE} deleted")
        except Exception as exc:  # noqa: BLE001
            log(f"volume type {CINDER_DB_SYNC_TYPE} kept: {exc}")

    net = conn.network
    for name, physnet, cidr, gw, desc in NETWORKS:
        n = net.find_network(name)
        if not n:
            n = net.create_network(
                name=name, description=desc, is_shared=True,
                provider_network_type="flat",
                provider_physical_network=physnet)
            log(f"network {name} created")
        if not any(s.name == name for s in net.subnets(network_id=n.id)):
            net.create_subnet(
                name=name, network_id=n.id, ip_version=4, cidr=cidr,
                gateway_ip=gw, is_dhcp_enabled=True,
                dns_nameservers=[])
            log(f"subnet {name} {cidr} created")
    _public_network_and_router(net)
    log(f"resources ready in {time.monotonic() - t0:.1f}s")


def _public_network_and_router(net):
    name, physnet, cidr, desc = PUBLIC_NETWORK
    public = net.find_network(name)
    if not public:
        public = net.create_network(
            name=name, description=desc, is_router_external=True,
            provider_network_type="flat",
            provider_physical_network=physnet)
        log(f"network {name} (external) created")
    elif not public.is_router_external:
        net.update_network(public, is_router_external=True)
        log(f"network {name} made external")
    if not any(s.name == name for s in net.subnets(network_id=public.id)):
        # no DHCP: nothing boots on it, its addresses are floating IPs
        net.create_subnet(name=name, network_id=public.id, ip_version=4,
                          cidr=cidr, is_dhcp_enabled=False,
                          dns_nameservers=[])
        log(f"subnet {name} {cidr} created")
    router = net.find_router(ROUTER_NAME)
    if not router:
        router = net.create_router(
            name=ROUTER_NAME,
            external_gateway_info={"network_id": public.id})
        log(f"router {ROUTER_NAME} created, gateway on {name}")
    elif (router.external_gateway_info or {}).get("network_id") != public.id:
        net.update_router(router,
                          external_gateway_info={"network_id": public.id})
        log(f"router {ROUTER_NAME}: gateway set to {name}")
    attached = _router_subnets(net, router)
    for net_name, *_ in NETWORKS:
        n = net.find_network(net_name, ignore_missing=False)
        for subnet in net.subnets(network_id=n.id):
            if subnet.id not in attached:
                net.add_interface_to_router(router, subnet=subnet.id)
                log(f"router {ROUTER_NAME}: interface on {subnet.name}")


def _router_subnets(net, router):
    return {ip["subnet_id"] for port in net.ports(device_id=router.id)
            if port.device_owner == "network:router_interface"
            for ip in port.fixed_ips or ()}


def public_network_status(net):
    """What status checks: lab-public external with its subnet, lab-router
    with its gateway there and an interface on each lab network."""
    name = PUBLIC_NETWORK[0]
    public = net.find_network(name)
    if not public:
        raise RuntimeError(f"no network {name}")
    if not public.is_router_external:
        raise RuntimeError(f"network {name} is not external")
    if not list(net.subnets(network_id=public.id)):
        raise RuntimeError(f"network {name} has no subnet")
    router = net.find_router(ROUTER_NAME)
    if not router:
        raise RuntimeError(f"no router {ROUTER_NAME}")
    if (router.external_gateway_info or {}).get("network_id") != public.id:
        raise RuntimeError(f"router {ROUTER_NAME} has no gateway on {name}")
    attached = _router_subnets(net, router)
    for net_name, *_ in NETWORKS:
        n = net.find_network(net_name)
        subnets = list(net.subnets(network_id=n.id)) if n else []
        if not subnets or any(s.id not in attached for s in subnets):
            raise RuntimeError(f"router {ROUTER_NAME} has no interface on "
                               f"{net_name}")
    return f"{name} external, {ROUTER_NAME} joins it to " + ", ".join(
        n for n, *_ in NETWORKS)


def _cloud_entries():
    """(name, auth URL, admin password, region) of every cloud of the lab."""
    text = E.get("LAB_CLOUD_ENTRIES", "").strip()
    if not text:
        return [("cloudmgr-lab", AUTH_URL, ADMIN_PASSWORD, REGION)]
    return [tuple(line.split("|", 3)) for line in text.splitlines()]


def cmd_clouds_yaml(path):
    lines = ["# Written by vagrant/lab/up.sh: the cloudmgr OpenStack lab, two",
             "# independent clouds (vagrant/lab/common.sh).",
             "clouds:"]
    for name, auth_url, password, region in _cloud_entries():
        auth = {"auth_url": auth_url, "username": "admin",
                "password": password, "project_name": "admin",
                "user_domain_name": "Default",
                "project_domain_name": "Default"}
        lines += [f"  {name}:", "    auth:"]
        lines += [f"      {k}: {v}" for k, v in auth.items()]
        lines += [f"    region_name: {region}",
                  "    identity_api_version: 3",
                  "    interface: public"]
    # both clouds write it (maybe at once): each its own temporary file
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as fh:
        fh.write("\n".join(lines) + "\n")
    os.replace(tmp, path)
    log(f"wrote {path}")


def _heartbeat_age(row, now):
    upd = datetime.datetime.fromisoformat(
        row.updated_at.replace("Z", "")).replace(tzinfo=None)
    return (now - upd).total_seconds()


def cmd_status(*flags):
    with_cinder = "--without-cinder" not in flags
    ok = True

    def check(name, fn):
        nonlocal ok
        t0 = time.monotonic()
        try:
            detail = fn()
            print(f"  OK    {name:<12} {detail}  ({time.monotonic()-t0:.2f}s)")
        except Exception as exc:  # noqa: BLE001
            ok = False
            print(f"  FAIL  {name:<12} {exc}")

    check("keystone", lambda: (token() and "token issued"))
    try:
        conn = connect()
        conn.authorize()
    except Exception as exc:  # noqa: BLE001
        print(f"  FAIL  session      {exc}")
        return 1

    def nova():
        now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
        svcs = list(conn.compute.services())
        out = []
        for binary, hosts in (("nova-conductor", None),
                              ("nova-scheduler", None),
                              ("nova-compute", COMPUTE_HOSTS)):
            rows = [s for s in svcs if s.binary == binary]
            for host in hosts or [r.host for r in rows][:1] or ["?"]:
                row = next((r for r in rows if r.host == host), None)
                if not row:
                    raise RuntimeError(f"{binary} on {host}: no service")
                if row.state != "up" or row.status != "enabled":
                    raise RuntimeError(f"{binary} on {host}: {row.state}/"
                                       f"{row.status}")
                age = _heartbeat_age(row, now)
                if age > 30:
                    raise RuntimeError(f"{binary} on {host}: heartbeat "
                                       f"{age:.0f}s old")
                out.append(f"{host}:{binary[5:]}")
        return "up: " + " ".join(out)

    def placement():
        rps = sorted(rp.name for rp in conn.placement.resource_providers())
        missing = set(COMPUTE_NODES) - set(rps)
        if missing:
            raise RuntimeError(f"no provider for {sorted(missing)[:5]} "
                               f"({len(missing)} missing)")
        if len(rps) > 10:
            return f"{len(rps)} providers ({rps[0]} ... {rps[-1]})"
        return f"providers {rps}"

    def glance():
        names = [i.name for i in conn.image.images()]
        return f"{len(names)} images"

    def neutron():
        names = sorted(n.name for n in conn.network.networks())
        missing = {n for n, *_ in NETWORKS} - set(names)
        if missing:
            raise RuntimeError(f"no network {sorted(missing)}")
        return (f"networks {names}; "
                + public_network_status(conn.network))

    def cinder():
        now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
        svcs = list(conn.block_storage.services())
        out = []
        for binary, host in (("cinder-scheduler", None),
                             ("cinder-volume", f"@{VOLUME_BACKEND}"),
                             ("cinder-backup", None)):
            rows = [s for s in svcs if s.binary == binary
                    and (host is None or s.host.endswith(host))]
            if not rows:
                raise RuntimeError(f"{binary}: no service")
            row = max(rows, key=lambda r: r.updated_at or "")
            if row.state != "up" or row.status != "enabled":
                raise RuntimeError(f"{binary} on {row.host}: {row.state}/"
                                   f"{row.status}")
            age = _heartbeat_age(row, now)
            if age > 30:
                raise RuntimeError(f"{binary} on {row.host}: heartbeat "
                                   f"{age:.0f}s old")
            out.append(f"{row.host}:{binary[7:]}")
        types = sorted(t.name for t in conn.block_storage.types())
        missing = {n for n, _ in VOLUME_TYPES} - set(types)
        if missing:
            raise RuntimeError(f"no volume type {sorted(missing)}")
        return "up: " + " ".join(out) + f"; types {types}"

    check("nova", nova)
    check("placement", placement)
    check("glance", glance)
    check("neutron", neutron)
    if with_cinder:
        check("cinder", cinder)
    return 0 if ok else 1


def _amqp():
    import urllib.parse

    import amqp
    u = urllib.parse.urlparse(E["LAB_TRANSPORT_URL"])
    vhost = urllib.parse.unquote(u.path[1:]) or "/"
    conn = amqp.Connection(
        host=f"{u.hostname}:{u.port or 5672}", userid=u.username,
        password=urllib.parse.unquote(u.password or ""), virtual_host=vhost,
        connect_timeout=5)
    conn.connect()
    return conn


class Queues:
    """Consumer counts of RabbitMQ queues (passive declare)."""

    def __init__(self):
        self.conn = _amqp()
        self.chan = self.conn.channel()

    def consumers(self, name):
        import amqp
        try:
            return self.chan.queue_declare(name, passive=True).consumer_count
        except amqp.exceptions.NotFound:
            self.chan = self.conn.channel()   # the broker closed it
            return 0


def _alive(pid):
    if int(pid) <= 0:
        return False
    try:
        os.kill(int(pid), 0)
        return True
    except OSError:
        return False


def _db():
    import pymysql
    return pymysql.connect(
        host=E.get("LAB_DB_HOST", "127.0.0.1"),
        port=int(E.get("LAB_DB_PORT", "3306")),
        user=E.get("LAB_DB_USER", "root"),
        password=E.get("LAB_DB_PASSWORD", ""), autocommit=True)


def cmd_amqp_ok():
    try:
        _amqp().close()
        return 0
    except Exception as exc:  # noqa: BLE001
        print(f"amqp: {exc}", file=sys.stderr)
        return 1


def cmd_wait_consumers(timeout, pid, *queues):
    q = Queues()
    deadline = time.monotonic() + float(timeout)
    left = list(queues)
    while left:
        left = [n for n in left if q.consumers(n) < 1]
        if not left:
            break
        if not _alive(pid):
            raise SystemExit(f"process {pid} exited before consuming {left}")
        if time.monotonic() > deadline:
            raise SystemExit(f"timeout: no consumer on {left}")
        time.sleep(0.25)


def cmd_wait_computes(timeout, *host_pids):
    """A compute is ready when it heartbeats after its RPC server is up.

    A heartbeat time alone can mislead: messages that a stopped compute
    left in the queue update its service row as well.
    """
    q = Queues()
    db = _db()
    prefix = E.get("LAB_DB_PREFIX", "cmlab_")
    pending = dict(hp.split("=", 1) for hp in host_pids)
    listening = {}
    t0 = time.monotonic()
    deadline = t0 + float(timeout)
    while pending:
        for host, pid in list(pending.items()):
            if not _alive(pid):
                raise SystemExit(f"nova-compute {host} (pid {pid}) exited")
            if host not in listening:
                if q.consumers(f"compute.{host}") > 0:
                    with db.cursor() as cur:
                        cur.execute("SELECT UTC_TIMESTAMP()")
                        listening[host] = cur.fetchone()[0]
                continue
            with db.cursor() as cur:
                cur.execute(
                    f"SELECT COUNT(*) FROM `{prefix}nova`.services WHERE "
                    "deleted = 0 AND `binary` = 'nova-compute' AND host = %s "
                    "AND updated_at >= %s", (host, listening[host]))
                if cur.fetchone()[0]:
                    log(f"nova-compute {host} heartbeat after "
                        f"{time.monotonic() - t0:.1f}s")
                    del pending[host]
        if pending and time.monotonic() > deadline:
            raise SystemExit(f"timeout waiting for computes {sorted(pending)}"
                             f" (listening: {sorted(listening)})")
        time.sleep(0.25)


def cmd_wait_steady(timeout, steady, *hosts):
    """Wait until each compute's heartbeat has kept coming for ``steady`` seconds.

    A compute that holds thousands of servers (the scale cloud) heartbeats once
    right after it starts, then goes quiet for a minute or more while its first
    resource update walks every node and server; the scheduler counts it down
    then (NoValidHost), so "back" is only when the heartbeats keep coming.
    """
    db = _db()
    prefix = E.get("LAB_DB_PREFIX", "cmlab_")
    t0 = time.monotonic()
    deadline = t0 + float(timeout)
    since = {h: None for h in hosts}  # when its heartbeats were last seen fresh without a gap
    while True:
        with db.cursor() as cur:
            for host in hosts:
                cur.execute(
                    f"SELECT TIMESTAMPDIFF(SECOND, updated_at, UTC_TIMESTAMP()) FROM `{prefix}nova`.services "
                    "WHERE deleted = 0 AND `binary` = 'nova-compute' AND host = %s", (host,))
                row = cur.fetchone()
                fresh = row is not None and row[0] is not None and row[0] <= 12
                if not fresh:
                    since[host] = None
                elif since[host] is None:
                    since[host] = time.monotonic()
        now = time.monotonic()
        if all(s is not None and now - s >= float(steady) for s in since.values()):
            log(f"nova-compute {' '.join(hosts)} steady after {now - t0:.1f}s")
            return
        if now > deadline:
            raise SystemExit(f"nova-compute {' '.join(hosts)}: no steady heartbeat within {timeout}s")
        time.sleep(1)


LAB_DIR = E.get("CLOUDMGR_LAB_DIR") or os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
        __file__)))), ".lab")
# the state dir of each cloud (common.sh instance_settings)
CLOUD_DIRS = {"cloudmgr-lab": LAB_DIR,
              "cloudmgr-lab-city": os.path.join(LAB_DIR, "city")}


def disk_path(cloud_dir, server_id):
    """The fake driver's disk of a server (nova.conf [cloudmgr_lab] disks_dir)."""
    return os.path.join(cloud_dir, "data", "disks", f"{server_id}.img")


def volume_path(cloud_dir, volume_id):
    """The lab volume driver's file of a volume (cinder.conf state_path)."""
    return os.path.join(cloud_dir, "data", "cinder", "lab-volumes",
                        f"volume-{volume_id}")


def cmd_path(kind, object_id):
    make = disk_path if kind == "disk" else volume_path
    for cloud_dir in CLOUD_DIRS.values():
        path = make(cloud_dir, object_id)
        if os.path.exists(path):
            print(path)
            return 0
    print(f"no {kind} file for {object_id} in "
          + ", ".join(CLOUD_DIRS.values()), file=sys.stderr)
    return 1


def main(argv):
    if not argv:
        print(__doc__)
        return 2
    cmd, args = argv[0], argv[1:]
    if cmd == "wait-keystone":
        cmd_wait_keystone(*args)
    elif cmd == "keystone":
        cmd_keystone()
    elif cmd == "catalog-id":
        cmd_catalog_id()
    elif cmd == "wait-http":
        cmd_wait_http(*args)
    elif cmd == "wait-placement":
        cmd_wait_placement(*args)
    elif cmd == "resources":
        cmd_resources()
    elif cmd == "clouds-yaml":
        cmd_clouds_yaml(*args)
    elif cmd == "finish":
        cmd_wait_placement(120)
        cmd_resources()
        cmd_clouds_yaml(*args)
        return cmd_status()
    elif cmd == "status":
        return cmd_status(*args)
    elif cmd == "amqp-ok":
        return cmd_amqp_ok()
    elif cmd == "wait-consumers":
        cmd_wait_consumers(*args)
    elif cmd == "wait-computes":
        cmd_wait_computes(*args)
    elif cmd == "wait-steady" and len(args) >= 3:
        cmd_wait_steady(*args)
    elif cmd in ("disk-path", "volume-path") and len(args) == 1:
        return cmd_path(cmd.split("-")[0], args[0])
    else:
        print(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
