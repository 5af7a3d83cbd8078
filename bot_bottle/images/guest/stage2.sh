# bot-bottle guest stage 2: pid 1 on the root image. Runs the shell script the kernel
# command line carries base64-encoded as `bb.run=` (so an argv with spaces and quotes
# survives the command line, which has no quoting of its own), prints its exit status
# as `bot-bottle-guest: exit N` and powers the VM off.
bb=/run/bot-bottle/busybox
$bb mount -t proc proc /proc
$bb mount -t sysfs sysfs /sys
$bb mount -t tmpfs -o mode=1777 tmpfs /tmp
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
run=
for arg in $($bb cat /proc/cmdline); do
  case "$arg" in bb.run=*) run="${arg#bb.run=}" ;; esac
done
echo "$run" | $bb base64 -d > /run/bot-bottle/run.sh
$bb sh /run/bot-bottle/run.sh
echo "bot-bottle-guest: exit $?"
echo o > /proc/sysrq-trigger
$bb sleep 10
