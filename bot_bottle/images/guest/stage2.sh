# bot-bottle guest stage 2: pid 1 on the root image. Runs the shell script the kernel
# command line carries base64-encoded as `bb.run=` (so an argv with spaces and quotes
# survives the command line, which has no quoting of its own), prints its exit status
# as `bot-bottle-guest: exit N` and powers the VM off. With `bb.mux=PORT,...` it first
# starts mux.py on the host channel's port, listening on 127.0.0.1:PORT, and waits
# until it listens. With `bb.user=UID` the command runs as that user (its group, no
# other groups, no capabilities, no-new-privs) with HOME=/home/agent: a writable
# overlay (on tmpfs, lost at power-off) over the image's read-only /home/agent. A disk
# with serial `bb-provision` is a tar, unpacked into /run/bot-bottle/files first.
bb=/run/bot-bottle/busybox
$bb mount -t proc proc /proc
$bb mount -t sysfs sysfs /sys
$bb mount -t tmpfs -o mode=1777 tmpfs /tmp
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
run=
mux=
user=
for arg in $($bb cat /proc/cmdline); do
  case "$arg" in
    bb.run=*) run="${arg#bb.run=}" ;;
    bb.mux=*) mux="${arg#bb.mux=}" ;;
    bb.user=*) user="${arg#bb.user=}" ;;
  esac
done
$bb ip link set lo up
for b in /sys/block/vd*; do
  if [ "$($bb cat "$b/serial" 2>/dev/null)" = bb-provision ]; then
    $bb mkdir -p /run/bot-bottle/files
    $bb tar -x -f "/dev/${b##*/}" -C /run/bot-bottle/files \
      || echo "bot-bottle-guest: cannot unpack the provision disk"
  fi
done
if [ -n "$mux" ]; then
  dev=
  for p in /sys/class/virtio-ports/*; do
    [ "$($bb cat "$p/name" 2>/dev/null)" = org.bot-bottle.channel.0 ] && dev="/dev/${p##*/}"
  done
  python3 -I -S /run/bot-bottle/mux.py guest "$dev" $(echo "$mux" | $bb tr , ' ') &
  i=0
  while [ ! -e /run/bot-bottle/mux.ready ] && [ $i -lt 100 ]; do $bb sleep 0.05; i=$((i + 1)); done
  [ -e /run/bot-bottle/mux.ready ] || echo "bot-bottle-guest: the channel forwarder did not start"
fi
echo "$run" | $bb base64 -d > /run/bot-bottle/run.sh
if [ -n "$user" ]; then
  rw=/run/bot-bottle/home
  $bb mkdir -p /run/bot-bottle/home
  $bb mount -t tmpfs -o mode=0700 tmpfs $rw
  $bb mkdir -p $rw/upper $rw/work
  $bb chown "$user:$user" $rw/upper
  $bb mount -t overlay overlay -o lowerdir=/home/agent,upperdir=$rw/upper,workdir=$rw/work /home/agent \
    || echo "bot-bottle-guest: no writable HOME"
  cd /home/agent
  drop="/usr/bin/setpriv --reuid=$user --regid=$user --clear-groups --no-new-privs --inh-caps=-all --bounding-set=-all"
  HOME=/home/agent $drop $bb sh /run/bot-bottle/run.sh
  status=$?
  # Whatever the agent left running dies before the status line, so the last status
  # line on the console is this one, not one a leftover process printed.
  $drop $bb kill -9 -1 2>/dev/null
  echo "bot-bottle-guest: exit $status"
  echo o > /proc/sysrq-trigger
  $bb sleep 10
else
  $bb sh /run/bot-bottle/run.sh
fi
echo "bot-bottle-guest: exit $?"
echo o > /proc/sysrq-trigger
$bb sleep 10
