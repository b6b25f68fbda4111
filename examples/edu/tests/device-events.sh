#!/bin/sh
# kmodvm-device: the test unplugs its device at its own moment, sees the
# driver let it go, and plugs it again; the driver, still loaded, probes it.
kmodvm-device unplug edu0
[ -e /dev/edu0 ] && echo "/dev/edu0 is still there" || echo "/dev/edu0 is gone"
kmodvm-device plug edu0
# plug answers once the guest's PCI bus shows the device; the driver's probe
# may still be running (a second, on the debug kernel): wait for its node.
n=0
while [ ! -e /dev/edu0 ] && [ "$n" -lt 500 ]; do n=$((n + 1)); sleep 0.02; done
./app/edu-app fact 3
# Only the two verbs, and only the suite's own device ids: the host refuses
# the rest, even written to the port by hand.
kmodvm-device unplug net0
kmodvm-device unplug kmodvm-port0
for p in /sys/class/virtio-ports/*; do [ "$(cat "$p/name")" = org.kmodvm.device ] && port=/dev/${p##*/}; done
exec 3<>"$port"
printf '%s\n' '{"execute": "device_add", "arguments": {"driver": "edu"}}' >&3
IFS= read -r reply <&3
echo "$reply"
