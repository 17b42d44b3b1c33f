# Writes the lab's OpenStack configuration files into $ETC (sourced by up.sh
# after common.sh, for the cloud LAB_INSTANCE: its ports, DB_PREFIX, REGION,
# COMPUTE_HOSTS and NOVA_CONTROL_HOST come from common.sh; RABBIT_VHOST and
# DEBUG are decided by up.sh).
# shellcheck shell=bash

_authtoken() {  # _authtoken USER: a [keystone_authtoken] body
    cat <<EOF
www_authenticate_uri = http://$LAB_HOST:$KEYSTONE_PORT
auth_url = http://$LAB_HOST:$KEYSTONE_PORT
auth_type = password
project_domain_name = Default
user_domain_name = Default
project_name = service
username = $1
password = $SERVICE_PASSWORD
region_name = $REGION
service_token_roles_required = true
EOF
}

_svc_auth() {  # _svc_auth USER: keystoneauth password options
    cat <<EOF
auth_type = password
auth_url = http://$LAB_HOST:$KEYSTONE_PORT/v3
project_domain_name = Default
user_domain_name = Default
project_name = service
username = $1
password = $SERVICE_PASSWORD
region_name = $REGION
EOF
}

_db_opts() {
    cat <<EOF
max_pool_size = 5
max_overflow = 10
pool_timeout = 30
connection_recycle_time = 600
EOF
}

write_configs() {
    local v
    for v in "LAB_HOST_VCPUS $LAB_HOST_VCPUS $FAKE_VCPUS" "LAB_HOST_RAM_MB $LAB_HOST_RAM_MB $FAKE_RAM_MB" \
             "LAB_HOST_DISK_GB $LAB_HOST_DISK_GB $FAKE_DISK_GB"; do
        set -- $v
        [[ "$2" =~ ^[0-9]+$ ]] && [ "$2" -ge 1 ] && [ "$2" -le "$3" ] \
            || die "$1=$2: must be a whole number from 1 to $3"
    done
    local venv_etc="$VENV/etc"
    local tu; tu="$(transport_url)"
    mkdir -p "$ETC"/{keystone,placement,glance,neutron,nova,cinder} "$LAB/keystone" \
        "$DATA"/glance/{images,staging,tasks} "$DATA"/{glance,neutron,nova,cinder}/lock \
        "$DATA"/cinder/backup "$DATA/disks"

    # ----------------------------------------------------------- keystone
    cat >"$ETC/keystone/keystone.conf" <<EOF
[DEFAULT]
debug = $DEBUG
use_stderr = true

[database]
connection = $(db_url keystone)
$(_db_opts)

[token]
provider = fernet
expiration = 14400

[fernet_tokens]
key_repository = $LAB/keystone/fernet-keys

[fernet_receipts]
key_repository = $LAB/keystone/fernet-keys

[credential]
key_repository = $LAB/keystone/credential-keys

[cache]
# in-process cache (one gunicorn worker): token validation and role
# lookups are otherwise ~0.25 s per request
enabled = true
backend = dogpile.cache.memory

[identity]
# cheap password hashing: every service authenticates often in a lab
password_hash_algorithm = bcrypt
password_hash_rounds = 4

[oslo_policy]
enforce_new_defaults = true
enforce_scope = false
EOF

    # ---------------------------------------------------------- placement
    cat >"$ETC/placement/placement.conf" <<EOF
[DEFAULT]
debug = $DEBUG
use_stderr = true

[placement_database]
connection = $(db_url placement)
$(_db_opts)

[api]
auth_strategy = keystone

[keystone_authtoken]
$(_authtoken placement)
EOF

    # ------------------------------------------------------------- glance
    cp "$venv_etc/glance/glance-api-paste.ini" "$ETC/glance/glance-api-paste.ini"
    cat >"$ETC/glance/glance-api.conf" <<EOF
[DEFAULT]
debug = $DEBUG
use_stderr = true
workers = 1
enabled_backends = fs:file
show_image_direct_url = false
image_cache_dir = $DATA/glance/cache
transport_url = $tu

[database]
connection = $(db_url glance)
$(_db_opts)

[glance_store]
default_backend = fs

[fs]
filesystem_store_datadir = $DATA/glance/images/

[os_glance_staging_store]
filesystem_store_datadir = $DATA/glance/staging/

[os_glance_tasks_store]
filesystem_store_datadir = $DATA/glance/tasks/

[keystone_authtoken]
$(_authtoken glance)

[paste_deploy]
flavor = keystone
config_file = $ETC/glance/glance-api-paste.ini

[oslo_concurrency]
lock_path = $DATA/glance/lock

[oslo_messaging_notifications]
driver = noop
EOF

    # ------------------------------------------------------------ neutron
    cp "$venv_etc/neutron/api-paste.ini" "$ETC/neutron/api-paste.ini"
    sed -i "s#^disable_by_file_path = .*#disable_by_file_path = $DATA/neutron/healthcheck_disable#" \
        "$ETC/neutron/api-paste.ini"
    cat >"$ETC/neutron/neutron.conf" <<EOF
[DEFAULT]
debug = $DEBUG
use_stderr = true
host = $NOVA_CONTROL_HOST
state_path = $DATA/neutron
core_plugin = ml2
# The router plugin: floating IPs from lab-public through lab-router (lab_admin.py) and
# their quota. No L3 agent runs: the API is enough.
service_plugins = router
auth_strategy = keystone
api_paste_config = $ETC/neutron/api-paste.ini
transport_url = $tu
api_workers = 1
rpc_workers = 0
rpc_state_report_workers = 0
dhcp_agent_notification = false
notify_nova_on_port_status_changes = true
notify_nova_on_port_data_changes = true
allow_overlapping_ips = true
global_physnet_mtu = 1500

[database]
connection = $(db_url neutron)
$(_db_opts)

[keystone_authtoken]
$(_authtoken neutron)

[nova]
$(_svc_auth nova)

[placement]
$(_svc_auth placement)

[oslo_concurrency]
lock_path = $DATA/neutron/lock

[oslo_messaging_notifications]
driver = noop
EOF
    cat >"$ETC/neutron/ml2_conf.ini" <<EOF
[ml2]
type_drivers = flat,vlan
tenant_network_types = vlan
mechanism_drivers = cloudmgr_lab
extension_drivers = port_security

[ml2_type_flat]
# "public": the external network floating IPs come from (lab_admin.py)
flat_networks = internet,extranet,public

[ml2_type_vlan]
network_vlan_ranges = tenant:1000:1999

[securitygroup]
enable_security_group = true
firewall_driver = noop
EOF

    # --------------------------------------------------------------- nova
    cp "$venv_etc/nova/api-paste.ini" "$ETC/nova/api-paste.ini"
    # The scale cloud has one compute host (its 200 hypervisors are that host's nodes), so a
    # resize can only land on the same host; the province and the city keep two hosts and
    # resize between them, as the province's clouds do.
    local resize_same_host=false
    if [ "$LAB_INSTANCE" = scale ]; then resize_same_host=true; fi
    cat >"$ETC/nova/nova.conf" <<EOF
[DEFAULT]
debug = $DEBUG
use_stderr = true
host = $NOVA_CONTROL_HOST
my_ip = $LAB_HOST
state_path = $DATA/nova
transport_url = $tu
# nova.virt.fake.FakeDriverWithoutFakeNodes that takes its guests back after
# a restart (cloudmgr_lab_ml2/virt.py, run by cloudmgr-lab-nova-compute)
compute_driver = cloudmgr_lab.LabFakeDriver
report_interval = 5
service_down_time = 30
vif_plugging_is_fatal = false
vif_plugging_timeout = 0
cpu_allocation_ratio = 1.0
ram_allocation_ratio = 1.0
disk_allocation_ratio = 1.0
allow_resize_to_same_host = $resize_same_host
osapi_compute_workers = 1
metadata_workers = 1
sync_power_state_interval = -1
periodic_fuzzy_delay = 0
# lab restarts need not wait for in-flight operations
graceful_shutdown_timeout = 3
manager_shutdown_timeout = 0
instance_usage_audit = false

[api]
auth_strategy = keystone

[api_database]
connection = $(db_url nova_api)
$(_db_opts)

[database]
connection = $(db_url nova)
$(_db_opts)

[conductor]
workers = 1

[scheduler]
workers = 1
discover_hosts_in_cells_interval = 3

[filter_scheduler]
enabled_filters = ComputeFilter,ComputeCapabilitiesFilter,ImagePropertiesFilter,ServerGroupAntiAffinityFilter,ServerGroupAffinityFilter

[compute]
live_migration_wait_for_vif_plug = false

[cloudmgr_lab]
# the fake driver's server disks, DIR/<server id>.img: one folder for both
# computes, so that a migrated server keeps its disk (cloudmgr_lab_ml2/virt.py)
disks_dir = $DATA/disks

[keystone_authtoken]
$(_authtoken nova)

[service_user]
send_service_user_token = true
$(_svc_auth nova)

[placement]
$(_svc_auth nova)

[neutron]
$(_svc_auth neutron)
service_metadata_proxy = false

[glance]
region_name = $REGION

[cinder]
os_region_name = $REGION
# Nova calls Cinder with the user's token; these credentials serve the
# admin contexts without one (periodic tasks, cleanups)
$(_svc_auth nova)

[vnc]
# Consoles are part of the contract (remote-consoles API): nova-api builds the
# URL from novncproxy_base_url and the fake driver answers get_vnc_console.
# No novncproxy runs, so the URL leads nowhere; the lab only needs it made.
enabled = true
server_listen = $LAB_HOST
server_proxyclient_address = $LAB_HOST
novncproxy_base_url = http://$LAB_HOST:6080/vnc_lite.html

[spice]
enabled = false

[serial_console]
enabled = false

[oslo_concurrency]
lock_path = $DATA/nova/lock

[oslo_messaging_notifications]
driver = noop
EOF
    # ------------------------------------------------------------- cinder
    # The lab's fake volume driver (cloudmgr_lab_ml2/volume.py: sparse files,
    # os-brick 'local' connections) as backend "fake"; backups with the POSIX
    # driver into $DATA/cinder/backup.
    cp "$venv_etc/cinder/api-paste.ini" "$ETC/cinder/api-paste.ini"
    sed -i "s#^disable_by_file_path = .*#disable_by_file_path = $DATA/cinder/healthcheck_disable#" \
        "$ETC/cinder/api-paste.ini"
    cat >"$ETC/cinder/cinder.conf" <<EOF
[DEFAULT]
debug = $DEBUG
use_stderr = true
host = $NOVA_CONTROL_HOST
my_ip = $LAB_HOST
state_path = $DATA/cinder
transport_url = $tu
auth_strategy = keystone
api_paste_config = $ETC/cinder/api-paste.ini
osapi_volume_listen = $LAB_BIND
osapi_volume_listen_port = $CINDER_PORT
osapi_volume_workers = 1
enabled_backends = fake
# made by up.sh (lab_admin.py resources), with "ssd"; else new volumes get
# the __DEFAULT__ type of Cinder's db sync
default_volume_type = fake
report_interval = 5
service_down_time = 30
# lab restarts need not wait (oslo.service waits 60 s by default)
graceful_shutdown_timeout = 3
# project defaults: room for the tests; a test that checks refusals sets
# its project's quota itself
quota_volumes = 50
quota_snapshots = 50
quota_gigabytes = 1000
quota_backups = 20
quota_backup_gigabytes = 1000
backup_driver = cinder.backup.drivers.posix.PosixBackupDriver
backup_posix_path = $DATA/cinder/backup
# zstd packs a lab volume's zeros several times faster than the default zlib;
# objects of 64 MiB, not ~2 GB (each is held in memory whole, twice on restore)
backup_compression_algorithm = zstd
backup_file_size = 67108864
rootwrap_config = $venv_etc/cinder/rootwrap.conf

[database]
connection = $(db_url cinder)
$(_db_opts)

[keystone_authtoken]
$(_authtoken cinder)

[nova]
# for the volume-extended event of an in-use extend (a service-role API)
$(_svc_auth cinder)

[oslo_concurrency]
lock_path = $DATA/cinder/lock

[oslo_messaging_notifications]
driver = noop

[fake]
volume_driver = cloudmgr_lab_ml2.volume.LabFakeVolumeDriver
volume_backend_name = fake

[privsep_osbrick]
# cinder-backup attaches volumes through os-brick, whose privsep daemon
# starts with "sudo cinder-rootwrap ..." by default: there is no sudo, and
# rootwrap accepts config files under /etc only. The lab runs as root: start
# the daemon directly.
helper_command = $VENV/bin/privsep-helper --config-file $ETC/cinder/cinder.conf
EOF

    local h
    for h in $COMPUTE_HOSTS; do
        mkdir -p "$DATA/$h/lock" "$DATA/$h/instances"
        if [ "$LAB_INSTANCE" = scale ]; then
            cat >"$ETC/nova/nova-compute-$h.conf" <<EOF
# $h: one nova-compute serving $LAB_SCALE_NODES fake hypervisors ($h-n000...), each
# ${LAB_SCALE_NODE_VCPUS} vCPU / ${LAB_SCALE_NODE_RAM_MB} MB / ${LAB_SCALE_NODE_DISK_GB} GB, nothing reserved.
[DEFAULT]
host = $h
state_path = $DATA/$h
instances_path = $DATA/$h/instances
compute_driver = cloudmgr_lab.ScaleFakeDriver
reserved_host_cpus = 0
reserved_host_memory_mb = 0
reserved_host_disk_mb = 0
# One process builds for 200 hypervisors: more builds at once than a host's 10 (Nova's
# default), and the threads to run them (native threading mode's default pool is 10).
max_concurrent_builds = 50
default_thread_pool_size = 64

[compute]
# At start and every minute the compute updates each node's resources, one at a time by
# default (200 nodes: minutes before it serves builds, under load)
update_resources_max_workers = 8

[cloudmgr_lab]
scale_nodes = $LAB_SCALE_NODES
scale_node_vcpus = $LAB_SCALE_NODE_VCPUS
scale_node_ram_mb = $LAB_SCALE_NODE_RAM_MB
scale_node_disk_gb = $LAB_SCALE_NODE_DISK_GB

[oslo_concurrency]
lock_path = $DATA/$h/lock
EOF
            continue
        fi
        cat >"$ETC/nova/nova-compute-$h.conf" <<EOF
# $h: the fake driver reports ${FAKE_VCPUS} vCPU / ${FAKE_RAM_MB} MB / ${FAKE_DISK_GB} GB;
# all but ${LAB_HOST_VCPUS} vCPU / ${LAB_HOST_RAM_MB} MB / ${LAB_HOST_DISK_GB} GB is reserved.
[DEFAULT]
host = $h
state_path = $DATA/$h
instances_path = $DATA/$h/instances
reserved_host_cpus = $((FAKE_VCPUS - LAB_HOST_VCPUS))
reserved_host_memory_mb = $((FAKE_RAM_MB - LAB_HOST_RAM_MB))
reserved_host_disk_mb = $(( (FAKE_DISK_GB - LAB_HOST_DISK_GB) * 1024 ))

[oslo_concurrency]
lock_path = $DATA/$h/lock
EOF
    done
}
