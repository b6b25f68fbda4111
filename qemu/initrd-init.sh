#!/bin/busybox sh
# The lean initrd's /init. No udev. Runs from a cpio made by scripts/lib/initrd.ts.
# 1. Load the modules the root disk and the network need. The groups in
#    /modules/group.* share no module, so they load in parallel (ext4's chain
#    is the long one under TCG); each group in dependency order.
# 2. Bring the network up (busybox ip: static, no dynamic loader to pay for)
#    while the root disk mounts.
# 3. Mount the root and the API filesystems under it, then switch_root to
#    /sbin/kmodvm-init with KMODVM_EARLY=1, which then only starts sshd.
bb=/bin/busybox
r=/newroot
$bb mount -t devtmpfs dev /dev
$bb mount -t proc proc /proc
fail() { echo "kmodvm-initrd: $*" > /dev/console; $bb poweroff -f; }
load() { for m in $($bb cat "$1"); do $bb insmod "/modules/$m" || fail "insmod $m failed"; done; }
pids=
for g in /modules/group.*; do
  [ -e "$g" ] || continue
  load "$g" &
  pids="$pids $!"
done
for p in $pids; do wait "$p"; done
net() {
  $bb ip link set lo up && $bb ip link set eth0 up && $bb ip addr add 10.0.2.15/24 dev eth0 \
    && $bb ip route add default via 10.0.2.2 || echo "kmodvm-initrd: network setup failed" > /dev/console
}
net &
netpid=$!
i=0
while [ ! -b /dev/vda ]; do
  i=$((i + 1)); [ "$i" -gt 1000 ] && fail "no /dev/vda after 10 s"
  $bb usleep 10000
done
$bb mount -t ext4 -o rw /dev/vda $r || fail "cannot mount /dev/vda"
$bb mount -t proc proc $r/proc
$bb mount -t sysfs sys $r/sys
$bb mount -t tmpfs tmpfs $r/run
$bb mount -t tmpfs tmpfs $r/tmp
$bb mkdir -p $r/run/sshd
$bb hostname kmodvm
wait "$netpid"
$bb umount /proc
$bb mount --move /dev $r/dev
$bb mkdir -p $r/dev/pts $r/dev/shm
$bb mount -t devpts -o gid=5,mode=620 devpts $r/dev/pts
$bb mount -t tmpfs tmpfs $r/dev/shm
export KMODVM_EARLY=1
exec $bb switch_root $r /sbin/kmodvm-init
