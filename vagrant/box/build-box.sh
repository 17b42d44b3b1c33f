#!/usr/bin/env bash
# Builds a Vagrant box for the libvirt provider from Debian's own packages,
# for machines that cannot download `debian/bookworm64` from Vagrant Cloud
# (closed government networks): only a Debian mirror is needed.
#
#   sudo bash vagrant/box/build-box.sh      # build + `vagrant box add`
#   cd vagrant && vagrant up --provider=libvirt
#
# What it makes (outside the repository, in $BOX_WORK_DIR):
#   - a Debian 12 (bookworm) root file system made by debootstrap, with
#     linux-image-amd64, systemd, openssh-server, sudo, ifupdown + DHCP on
#     eth0, and the `vagrant` user (passwordless sudo, Vagrant's well-known
#     insecure public key, which Vagrant replaces at the first `vagrant up`);
#   - box.img: that file system as a whole-disk ext4 (no partition table, no
#     boot loader: mkfs.ext4 -d fills it from a directory, so neither loop
#     devices nor mounts are needed), converted to qcow2;
#   - the box's own Vagrantfile, which boots the box's kernel and initrd
#     directly (libvirt.kernel/initrd/cmd_line, root=/dev/vda);
#   - $BOX_WORK_DIR/cloudmgr-bookworm64.box (tar of box.img, metadata.json,
#     Vagrantfile, vmlinuz, initrd.img), added as $BOX_NAME.
#
# Idempotent: every step leaves a stamp that records its inputs (this
# script's checksum and the settings), so a re-run with nothing changed only
# checks and returns; a change rebuilds from the first affected step.
#
# Settings (environment): BOX_NAME (debian/bookworm64: the name the
# repository's Vagrantfile uses unless CLOUDMGR_VAGRANT_BOX says otherwise),
# BOX_WORK_DIR (/var/tmp/cloudmgr-box), BOX_DISK_GB (20: the lab's venv,
# MariaDB, RabbitMQ, PostgreSQL and cloudmgr need ~6 GB; the qcow2 only
# grows with use), DEBIAN_MIRROR (http://deb.debian.org/debian),
# DEBIAN_SECURITY_MIRROR (http://deb.debian.org/debian-security),
# BOX_ADD=0 (build the .box only, no `vagrant box add`).
# Needs root, debootstrap, e2fsprogs (>= 1.47 for mkfs.ext4 -d with hard
# links), qemu-utils, and vagrant for the final `box add`.
set -euo pipefail

BOX_NAME="${BOX_NAME:-debian/bookworm64}"
WORK="${BOX_WORK_DIR:-/var/tmp/cloudmgr-box}"
DISK_GB="${BOX_DISK_GB:-20}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
SECURITY_MIRROR="${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}"
SUITE=bookworm
ROOT="$WORK/rootfs"
RAW="$WORK/disk.raw"
STAGE="$WORK/box"
BOX_FILE="$WORK/cloudmgr-bookworm64.box"

say() { printf '[build-box %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
die() { printf '[build-box] ERROR: %s\n' "$*" >&2; exit 1; }
T0=$(date +%s)

[ "$(id -u)" = 0 ] || die "run as root (debootstrap, chroot and file ownership in the image need it)"
for tool in debootstrap mkfs.ext4 qemu-img tar sha256sum; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is missing: apt-get install debootstrap e2fsprogs qemu-utils"
done

# Vagrant's well-known insecure key: Vagrant logs in with it once and then
# puts a key of the machine's own in its place (config.ssh.insert_key)
INSECURE_PUB=""
for f in /usr/share/rubygems-integration/all/gems/vagrant-*/keys/vagrant.pub \
         /usr/share/vagrant/keys/vagrant.pub /opt/vagrant/embedded/gems/gems/vagrant-*/keys/vagrant.pub \
         /usr/lib/ruby/vendor_ruby/vagrant*/keys/vagrant.pub; do
    if [ -f "$f" ]; then INSECURE_PUB="$f"; break; fi
done
[ -n "$INSECURE_PUB" ] || die "Vagrant's keys/vagrant.pub not found: install vagrant (apt-get install vagrant)"

mkdir -p "$WORK"
# A step's stamp records its inputs, including the previous step's stamp and
# the text of the function that does the step's work (declare -f), so editing
# one step's code or settings redoes that step and the ones after it only.
stamp_of() { cat "$WORK/$1.stamp" 2>/dev/null || true; }
done_with() { [ -f "$WORK/$1.stamp" ] && [ "$(cat "$WORK/$1.stamp")" = "$2" ]; }
mark_done() { printf '%s\n' "$2" >"$WORK/$1.stamp"; }

# debootstrap mounts /proc and /sys inside the target; a run that was cut
# short may leave them mounted, and they must not end up in the image
unmount_target() {
    local m
    for m in "$ROOT/proc" "$ROOT/sys" "$ROOT/dev/pts" "$ROOT/dev"; do
        if mountpoint -q "$m" 2>/dev/null; then umount -l "$m" || true; fi
    done
}
# ------------------------------------------------------- 1. debootstrap
PACKAGES=linux-image-amd64,initramfs-tools,systemd-sysv,dbus,udev,openssh-server,sudo,ifupdown,isc-dhcp-client,iproute2,procps,ca-certificates,curl,rsync,less,kmod
S1="debootstrap $SUITE amd64 $MIRROR $PACKAGES"
if done_with debootstrap "$S1" && [ -x "$ROOT/usr/bin/apt-get" ]; then
    say "1/5 debootstrap: $ROOT up to date"
else
    say "1/5 debootstrap: $SUITE from $MIRROR into $ROOT (log: $WORK/debootstrap.log)"
    t=$(date +%s)
    unmount_target
    # a partial root file system cannot be resumed reliably: start over
    rm -rf "$ROOT" "$WORK"/*.stamp
    debootstrap --arch=amd64 --include="$PACKAGES" "$SUITE" "$ROOT" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 \
        || { tail -n 30 "$WORK/debootstrap.log" >&2; die "debootstrap failed (log: $WORK/debootstrap.log)"; }
    unmount_target
    mark_done debootstrap "$S1"
    say "   debootstrap done in $(( $(date +%s) - t )) s"
fi

# -------------------------------------------------------- 2. configure
configure_rootfs() {  # the image's own settings; safe to run again
    echo bookworm >"$ROOT/etc/hostname"
    printf '127.0.0.1\tlocalhost\n127.0.1.1\tbookworm\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$ROOT/etc/hosts"
    # whole-disk ext4 on the first virtio disk (see the box's Vagrantfile)
    printf '/dev/vda\t/\text4\terrors=remount-ro\t0\t1\n' >"$ROOT/etc/fstab"
    printf 'deb %s %s main\ndeb %s %s-updates main\ndeb %s %s-security main\n' \
        "$MIRROR" "$SUITE" "$MIRROR" "$SUITE" "$SECURITY_MIRROR" "$SUITE" >"$ROOT/etc/apt/sources.list"
    # DHCP on the first NIC; net.ifnames=0 on the kernel command line keeps
    # its name eth0 whatever PCI slot libvirt gives it
    printf '%s\n' 'source /etc/network/interfaces.d/*' '' 'auto lo' 'iface lo inet loopback' '' \
        'auto eth0' 'iface eth0 inet dhcp' >"$ROOT/etc/network/interfaces"
    # the vagrant user: password "vagrant" (the convention for base boxes),
    # passwordless sudo, the insecure key
    chroot "$ROOT" id vagrant >/dev/null 2>&1 \
        || chroot "$ROOT" useradd --create-home --shell /bin/bash --groups sudo vagrant
    echo 'vagrant:vagrant' | chroot "$ROOT" chpasswd
    printf 'vagrant ALL=(ALL) NOPASSWD: ALL\nDefaults:vagrant !requiretty\n' >"$ROOT/etc/sudoers.d/vagrant"
    chmod 0440 "$ROOT/etc/sudoers.d/vagrant"
    install -d -m 0700 "$ROOT/home/vagrant/.ssh"
    install -m 0600 "$INSECURE_PUB" "$ROOT/home/vagrant/.ssh/authorized_keys"
    chroot "$ROOT" chown -R vagrant:vagrant /home/vagrant/.ssh
    # Vagrant connects as soon as port 22 answers: no reverse DNS lookups
    printf 'UseDNS no\n' >"$ROOT/etc/ssh/sshd_config.d/vagrant.conf"
    # every VM made from the box gets SSH host keys and a machine id of its own
    rm -f "$ROOT"/etc/ssh/ssh_host_*
    printf '%s\n' '[Unit]' 'Description=Generate SSH host keys on first boot' 'Before=ssh.service' \
        'ConditionPathExistsGlob=!/etc/ssh/ssh_host_*_key' '' '[Service]' 'Type=oneshot' \
        'ExecStart=/usr/bin/ssh-keygen -A' '' '[Install]' 'WantedBy=multi-user.target' \
        >"$ROOT/etc/systemd/system/ssh-host-keys.service"
    mkdir -p "$ROOT/etc/systemd/system/multi-user.target.wants"
    ln -sf /etc/systemd/system/ssh-host-keys.service \
        "$ROOT/etc/systemd/system/multi-user.target.wants/ssh-host-keys.service"
    : >"$ROOT/etc/machine-id"
    ln -sf /etc/machine-id "$ROOT/var/lib/dbus/machine-id"
    ln -sf /usr/share/zoneinfo/Etc/UTC "$ROOT/etc/localtime"
    echo Etc/UTC >"$ROOT/etc/timezone"
    # the initrd must exist (initramfs-tools' MODULES=most has virtio_blk and ext4)
    ls "$ROOT"/boot/initrd.img-* >/dev/null 2>&1 || chroot "$ROOT" update-initramfs -c -k all
    chroot "$ROOT" apt-get clean
    rm -rf "$ROOT"/var/lib/apt/lists/* "$ROOT"/tmp/* "$ROOT"/var/tmp/*
}
S2="$(stamp_of debootstrap) $(declare -f configure_rootfs | sha256sum | cut -c1-16) $(sha256sum "$INSECURE_PUB" | cut -c1-16)"
if done_with configure "$S2"; then
    say "2/5 configure: up to date"
else
    say "2/5 configure: hostname, fstab, apt sources, eth0 DHCP, user vagrant, sshd"
    configure_rootfs
    mark_done configure "$S2"
fi

# ------------------------------------------------------- 3. disk image
KVER="$(find "$ROOT/boot" -maxdepth 1 -name 'vmlinuz-*' -printf '%f\n' | sed 's/^vmlinuz-//' | sort -V | tail -n 1)"
{ [ -n "$KVER" ] && [ -f "$ROOT/boot/initrd.img-$KVER" ]; } || die "no kernel/initrd in $ROOT/boot"
write_box_vagrantfile() {  # the box's own Vagrantfile
    # Vagrant loads it from the box's directory: __dir__ finds the kernel and
    # initrd that come with the box
    cat >"$1" <<'EOF'
# Debian 12 box built by cloudmgr's vagrant/box/build-box.sh: a whole-disk
# ext4 without a boot loader, booted with the box's own kernel and initrd.
Vagrant.configure("2") do |config|
  config.vm.provider :libvirt do |libvirt|
    libvirt.driver = "kvm"
    libvirt.disk_bus = "virtio"
    libvirt.kernel = File.join(__dir__, "vmlinuz")
    libvirt.initrd = File.join(__dir__, "initrd.img")
    libvirt.cmd_line = "root=/dev/vda rw rootfstype=ext4 net.ifnames=0 console=tty0 console=ttyS0,115200"
  end
end
EOF
}
S3="$(stamp_of configure) $KVER ${DISK_GB}G $(declare -f write_box_vagrantfile | sha256sum | cut -c1-16)"
if done_with disk "$S3" && [ -s "$STAGE/box.img" ]; then
    say "3/5 disk: $STAGE/box.img up to date"
else
    say "3/5 disk: ${DISK_GB} GB whole-disk ext4 from $ROOT -> qcow2 (kernel $KVER)"
    t=$(date +%s)
    unmount_target
    rm -rf "$STAGE" "$RAW"
    mkdir -p "$STAGE"
    truncate -s "${DISK_GB}G" "$RAW"
    mkfs.ext4 -q -F -L root -d "$ROOT" "$RAW"
    qemu-img convert -f raw -O qcow2 "$RAW" "$STAGE/box.img"
    rm -f "$RAW"
    install -m 0644 "$ROOT/boot/vmlinuz-$KVER" "$STAGE/vmlinuz"
    install -m 0644 "$ROOT/boot/initrd.img-$KVER" "$STAGE/initrd.img"
    printf '{"provider":"libvirt","format":"qcow2","virtual_size":%s}\n' "$DISK_GB" >"$STAGE/metadata.json"
    write_box_vagrantfile "$STAGE/Vagrantfile"
    mark_done disk "$S3"
    say "   disk done in $(( $(date +%s) - t )) s (qcow2 $(du -h "$STAGE/box.img" | cut -f1))"
fi

# -------------------------------------------------------------- 4. .box
S4="$(stamp_of disk)"
if done_with box "$S4" && [ -s "$BOX_FILE" ]; then
    say "4/5 box: $BOX_FILE up to date"
else
    say "4/5 box: $BOX_FILE"
    t=$(date +%s)
    # uncompressed tar: the qcow2 holds only used blocks, and gzip of ~1 GB
    # costs more time than it saves on a local disk
    tar -C "$STAGE" -cf "$BOX_FILE.tmp" metadata.json Vagrantfile box.img vmlinuz initrd.img
    mv "$BOX_FILE.tmp" "$BOX_FILE"
    mark_done box "$S4"
    say "   box done in $(( $(date +%s) - t )) s ($(du -h "$BOX_FILE" | cut -f1))"
fi

# ------------------------------------------------------------- 5. add
# `sudo build-box.sh` adds the box for the user who ran sudo (boxes live in
# each user's ~/.vagrant.d), not for root
AS_USER=()
if [ -n "${SUDO_USER:-}" ] && [ "$SUDO_USER" != root ]; then AS_USER=(sudo -u "$SUDO_USER" -H); fi
S5="$(stamp_of box) $BOX_NAME ${SUDO_USER:-root}"
if [ "${BOX_ADD:-1}" = 0 ]; then
    say "5/5 add: skipped (BOX_ADD=0); later: vagrant box add --force --name $BOX_NAME $BOX_FILE"
elif ! command -v vagrant >/dev/null 2>&1; then
    die "vagrant is missing (apt-get install vagrant vagrant-libvirt), or set BOX_ADD=0"
elif done_with added "$S5" \
        && "${AS_USER[@]}" vagrant box list --machine-readable 2>/dev/null | grep -q ",box-name,$BOX_NAME\$"; then
    say "5/5 add: box $BOX_NAME already added"
else
    say "5/5 add: vagrant box add --force --name $BOX_NAME --provider libvirt $BOX_FILE"
    # --force replaces an older build. vagrant-libvirt names the storage
    # volume it copies a box into after the image's mtime for a box without a
    # version, so VMs made after a rebuild use the new image (old volumes stay
    # in the pool "default" until deleted with virsh vol-delete)
    "${AS_USER[@]}" vagrant box add --force --name "$BOX_NAME" --provider libvirt "$BOX_FILE"
    mark_done added "$S5"
fi
# libvirt's qemu runs as libvirt-qemu (qemu:///system) and opens the box's
# kernel and initrd where Vagrant unpacked them, in ~/.vagrant.d: a home
# directory of mode 0700 (Debian 12's default, and /root) keeps it out. Give
# that user search permission (x, no read) on the directories on the way, as
# virt-manager does for disk images; BOX_FIX_ACL=0 only prints the advice.
if [ "${BOX_ADD:-1}" != 0 ] && id libvirt-qemu >/dev/null 2>&1; then
    home="$(getent passwd "${SUDO_USER:-root}" | cut -d: -f6)"
    vhome="${VAGRANT_HOME:-$home/.vagrant.d}"
    kernel="$vhome/boxes/$(printf '%s' "$BOX_NAME" | sed 's#/#-VAGRANTSLASH-#g')/0/libvirt/vmlinuz"
    if [ -f "$kernel" ] && ! runuser -u libvirt-qemu -- test -r "$kernel"; then
        dirs=(); d="$(dirname "$kernel")"
        while [ "$d" != / ]; do dirs+=("$d"); d="$(dirname "$d")"; done
        if [ "${BOX_FIX_ACL:-1}" != 0 ] && command -v setfacl >/dev/null 2>&1; then
            for d in "${dirs[@]}"; do
                runuser -u libvirt-qemu -- test -x "$d" || setfacl -m u:libvirt-qemu:x "$d"
            done
            say "   gave libvirt-qemu search permission (ACL) on the way to $kernel"
        else
            say "   WARNING: libvirt-qemu cannot read $kernel; run: setfacl -m u:libvirt-qemu:x <each directory above it> (apt-get install acl)"
        fi
    fi
fi
say "done in $(( $(date +%s) - T0 )) s: box $BOX_NAME ($BOX_FILE)"
