#!/bin/busybox sh
# bot-bottle guest init, run by the kernel from the initramfs as pid 1.
# Loads the virtio modules, then on `bb.mode=probe` prints the boot marker and powers
# off; otherwise mounts the root image (/dev/vda, read-only), switches to it and runs
# stage2.sh there as pid 1.
/bin/busybox mkdir -p /proc /sys /dev /newroot
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
fail() { echo "bot-bottle-init: $*"; echo o > /proc/sysrq-trigger; sleep 10; }
for m in $(cat /etc/modules.order); do
  insmod "/lib/modules/$m.ko" || fail "insmod $m failed"
done
mode=root
for arg in $(cat /proc/cmdline); do
  case "$arg" in bb.mode=*) mode="${arg#bb.mode=}" ;; esac
done
if [ "$mode" = probe ]; then
  echo "bot-bottle-guest: booted $(uname -r)"
  echo o > /proc/sysrq-trigger
  sleep 10
fi
i=0
while [ ! -b /dev/vda ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
mount -t erofs -o ro /dev/vda /newroot || fail "cannot mount the root image /dev/vda"
# stage2 needs a shell after the switch: busybox rides along on a tmpfs.
mount -t tmpfs -o mode=0755,size=8m tmpfs /newroot/run
mkdir -p /newroot/run/bot-bottle
cp /bin/busybox /etc/stage2.sh /etc/bottle.sh /etc/mux.py /etc/exec_service.py /etc/confine.py \
  /newroot/run/bot-bottle/
mount --move /dev /newroot/dev
umount /proc /sys
stage2=stage2.sh
[ "$mode" = bottle ] && stage2=bottle.sh
exec switch_root /newroot /run/bot-bottle/busybox sh "/run/bot-bottle/$stage2"
