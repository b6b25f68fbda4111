#!/bin/busybox sh
# The lean initrd's /init: load the few modules the root disk needs (listed,
# in dependency order, in /modules/order), wait for /dev/vda, switch_root.
# No udev. Runs from a cpio made by scripts/lib/initrd.ts.
bb=/bin/busybox
$bb mount -t devtmpfs dev /dev
$bb mount -t proc proc /proc
fail() { echo "kmodvm-initrd: $*" > /dev/console; $bb poweroff -f; }
for m in $($bb cat /modules/order); do
  $bb insmod "/modules/$m" || fail "insmod $m failed"
done
i=0
while [ ! -b /dev/vda ]; do
  i=$((i + 1)); [ "$i" -gt 1000 ] && fail "no /dev/vda after 10 s"
  $bb usleep 10000
done
$bb mount -t ext4 -o rw /dev/vda /newroot || fail "cannot mount /dev/vda"
$bb umount /proc
$bb mount --move /dev /newroot/dev
exec $bb switch_root /newroot /sbin/kmodvm-init
