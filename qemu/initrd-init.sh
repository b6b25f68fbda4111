#!/bin/busybox sh
# The lean initrd's /init. No udev. Runs from a cpio made by scripts/lib/initrd.ts.
# 1. When the initrd has sshd (the image's own, scripts/lib/early-sshd.ts) and
#    the command line says kmodvm.sshd=initrd, start it at once, from RAM:
#    its sessions are chrooted into /newroot.
# 2. Load the modules the root disk and the network need. The groups in
#    /modules/group.* share no module, so they load in parallel (ext4's chain
#    is the long one under TCG); each group in dependency order.
# 3. Bring the network up (busybox ip: static, no dynamic loader to pay for)
#    while the root disk mounts.
# 4. Mount the root and the API filesystems under it. With the early sshd,
#    this script stays PID 1 and prints the readiness marker once sshd
#    listens and the root is ready; without it (an initrd of busybox alone,
#    for a kernel of your own), switch_root to /sbin/kmodvm-init with
#    KMODVM_EARLY=1, which then only starts sshd.
bb=/bin/busybox
r=/newroot
$bb mount -t devtmpfs dev /dev
$bb mount -t proc proc /proc
fail() { echo "kmodvm-initrd: $*" > /dev/console; $bb poweroff -f; }
mark() { read -r up _ < /proc/uptime; echo "kmodvm-init: $1 at ${up}s" > /dev/console; }
early=
# The tool asks for the early sshd (kmodvm.sshd=initrd) only when this initrd is the
# booted image's own: its host key and authorized_keys are that image's.
case " $($bb cat /proc/cmdline) " in *" kmodvm.sshd=initrd "*) [ -x /usr/sbin/sshd ] && early=1 ;; esac
if [ -n "$early" ]; then
  $bb mkdir -p /dev/pts /dev/shm /run/sshd
  $bb mount -t devpts -o gid=5,mode=620 devpts /dev/pts
  $bb mount -t tmpfs tmpfs /dev/shm
  # -r: no re-exec per connection; OpenSSH releases without -r get the plain start.
  { /usr/sbin/sshd -r -e 2>/dev/null || /usr/sbin/sshd -e 2>/dev/null || echo "kmodvm-initrd: sshd failed to start" > /dev/console; } &
fi
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
# A kernel's own modules carried in the initrd (the debug kernel's): its
# /lib/modules/<version> in the guest's root, on a tmpfs (the root disk's
# writes are thrown away anyway; switch_root would empty the initrd's copy).
for d in /lib/modules/*; do
  [ -d "$d" ] || continue
  $bb mkdir -p "$r$d" && $bb mount -t tmpfs -o mode=0755 tmpfs "$r$d" && $bb cp -a "$d/." "$r$d/" \
    || echo "kmodvm-initrd: cannot install $d" > /dev/console
done
$bb hostname kmodvm
wait "$netpid"
if [ -n "$early" ]; then
  # /dev (with /dev/pts, where sshd makes its ptys) is shared with the sessions' root.
  $bb mount -o rbind /dev $r/dev
  # The kernel's module autoload (request_module: netfilter matches, crypto,
  # a protocol family) runs /sbin/modprobe in PID 1's root, this initrd's:
  # a helper runs the Debian root's modprobe there instead (#29.11), found on
  # the helper's PATH (the root's /sbin is kmodvm's own, without modprobe).
  printf '#!/bin/busybox sh\nexec /bin/busybox chroot /newroot modprobe "$@"\n' > /bin/kmodvm-modprobe
  $bb chmod 755 /bin/kmodvm-modprobe
  echo /bin/kmodvm-modprobe > /proc/sys/kernel/modprobe
  mark start
  i=0
  while [ ! -e /run/sshd.pid ]; do
    i=$((i + 1)); [ "$i" -gt 3000 ] && fail "sshd did not start within 30 s"
    $bb usleep 10000
  done
  mark sshd-started
  # The boot is quiet on the console (loglevel=5); from here on the console
  # shows everything, so `vm:logs -f` follows the module's pr_info lines.
  echo 7 > /proc/sys/kernel/printk
  # PID 1 only waits (and reaps orphans).
  while :; do $bb sleep 3600; done
fi
$bb umount /proc
$bb mount --move /dev $r/dev
$bb mkdir -p $r/dev/pts $r/dev/shm
$bb mount -t devpts -o gid=5,mode=620 devpts $r/dev/pts
$bb mount -t tmpfs tmpfs $r/dev/shm
export KMODVM_EARLY=1
exec $bb switch_root $r /sbin/kmodvm-init
