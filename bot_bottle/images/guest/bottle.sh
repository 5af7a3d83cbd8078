# bot-bottle guest stage 2 for a bottle (`bb.mode=bottle`): pid 1 on the read-only root.
# Everything the launcher gives the guest is on the provision disk (serial `bb-provision`,
# a tar unpacked into /run/bot-bottle/files): `run.sh` (the agent's environment and
# command), `etc/{passwd,group,hosts}`, `binds` (paths in the workspace bound over
# themselves, `ro` ones read-only) and `nonce` (root's alone: the agent cannot print the
# status line below). HOME and the workspace are virtiofs shares (`home`, `workspace`).
# The agent runs on /dev/hvc0 (its terminal: QEMU's stdio on the host) as `bb.user`
# UID:GID, no other groups, no capabilities, no-new-privs; its exit status goes to the
# serial console (a log the launcher keeps on the host) as `bot-bottle-guest: status NONCE N`.
bb=/run/bot-bottle/busybox
files=/run/bot-bottle/files
say() { echo "bot-bottle-guest: $*"; }
$bb mount -t proc -o nosuid,nodev,noexec proc /proc
$bb mount -t sysfs -o nosuid,nodev,noexec sysfs /sys
$bb mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /tmp
# Terminals for `bot-bottle exec` and for the agent's own tools.
$bb mkdir -p /dev/pts
$bb mount -t devpts -o nosuid,noexec,mode=0620,ptmxmode=0666 devpts /dev/pts
# No process may trace or read the memory of any but its descendants: not of the
# commands `bot-bottle exec` runs beside the agent as the same user (the seccomp filter
# below refuses ptrace itself; this covers /proc/PID/mem too).
echo 1 > /proc/sys/kernel/yama/ptrace_scope || say "cannot restrict ptrace"
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
mux=
user=
tty=raw
for arg in $($bb cat /proc/cmdline); do
  case "$arg" in
    bb.mux=*) mux="${arg#bb.mux=}" ;;
    bb.user=*) user="${arg#bb.user=}" ;;
    bb.tty=*) tty="${arg#bb.tty=}" ;;
  esac
done
$bb ip link set lo up
$bb mkdir -p -m 0755 $files
for b in /sys/block/vd*; do
  if [ "$($bb cat "$b/serial" 2>/dev/null)" = bb-provision ]; then
    $bb tar -x -f "/dev/${b##*/}" -C $files || say "cannot unpack the provision disk"
  fi
done
nonce=$($bb cat $files/nonce 2>/dev/null)
$bb rm -f $files/nonce
for f in passwd group hosts; do
  [ -f $files/etc/$f ] && $bb mount --bind $files/etc/$f /etc/$f
done
# nosuid, nodev: nothing in a share raises privileges in the guest.
$bb mount -t virtiofs -o nosuid,nodev home /home/agent || say "cannot mount HOME"
if $bb grep -q '^workspace$' $files/shares 2>/dev/null; then
  $bb mount -t virtiofs -o nosuid,nodev workspace /workspace || say "cannot mount the workspace"
fi
# The files the launch read stay as they were: each bound over itself (read-only where
# marked), parents first, so it can be neither changed nor renamed away. A path that is
# no longer what it was (a link now) is skipped: the launcher checked it before boot.
if [ -f $files/binds ]; then
  while read -r how rel; do
    p="/workspace/$rel"
    [ "$($bb readlink -f "$p")" = "$p" ] || { say "not binding $rel (no longer a plain path)"; continue; }
    $bb mount --bind "$p" "$p" || continue
    [ "$how" = ro ] && $bb mount -o remount,bind,ro "$p"
  done < $files/binds
fi
dev=
for p in /sys/class/virtio-ports/*; do
  [ "$($bb cat "$p/name" 2>/dev/null)" = org.bot-bottle.channel.0 ] && dev="/dev/${p##*/}"
done
# The forwarder runs even with no sidecar port: it also serves the streams the host
# opens (`bot-bottle exec`, the terminal's size: exec_service.py).
if [ -n "$dev" ]; then
  python3 -I -S /run/bot-bottle/mux.py guest "$dev" $(echo "$mux" | $bb tr , ' ') &
  i=0
  while [ ! -e /run/bot-bottle/mux.ready ] && [ $i -lt 200 ]; do $bb sleep 0.05; i=$((i + 1)); done
  [ -e /run/bot-bottle/mux.ready ] || say "the channel forwarder did not start"
fi
term=/dev/hvc0
# Held open until the agent ends: virtio_console sets the size to 0x0 on each first open
# of the console, which would undo the size set here when the agent opens it.
exec 3<>$term
case "$tty" in
  raw) $bb stty -F $term raw -echo ;;
  *x*) $bb stty -F $term rows "${tty%x*}" cols "${tty#*x}" ;;
esac
# No user namespaces for the agent (the other backends' seccomp filters refuse them too):
# in one it held every capability over the guest kernel's mount, network and keyring
# code. And the serial console is a log on the host: from here on only the kernel's
# emergencies reach it, not what the agent can make it print (a mount option it made
# up, an OOM kill), which filled the host's disk at over 1 MB/s (the launcher now keeps
# only 8 MiB and the end of it; the status line must not be drowned either).
echo 0 > /proc/sys/user/max_user_namespaces || say "cannot turn off user namespaces"
echo 1 > /proc/sys/kernel/printk || say "cannot quiet the console"
if [ -d /workspace ] && $bb grep -q '^workspace$' $files/shares 2>/dev/null; then cd /workspace; else cd /home/agent; fi
uid="${user%:*}"
gid="${user#*:}"
drop="/usr/bin/setpriv --reuid=$uid --regid=$gid --clear-groups --no-new-privs --inh-caps=-all --bounding-set=-all"
# Every process of the agent's, forks included, in a cgroup of root's (none can leave it),
# so that `cgroup.kill` ends them all at once when the agent exits: a `kill -9 -1` as
# the agent's uid was itself killed by a leftover that kept doing the same.
cg=/sys/fs/cgroup
$bb mount -t cgroup2 -o nosuid,nodev,noexec cgroup2 $cg && $bb mkdir $cg/agent \
  || say "cannot make the agent's cgroup"
# Under the namespace backend's seccomp filter (fd 4), loaded by confine.py as root
# before the drop, so no process of the agent's uid ever runs without it (an unfiltered
# one, an exec's Python, could be reached by the filtered ones): the guest kernel is the
# boundary, so the agent reaches no more of it than the other backends let it reach of
# the host's (no io_uring, keyrings, userfaultfd, ptrace, other socket families...).
# Without the filter the agent does not start. Then an empty environment: run.sh sets
# the agent's whole (Python would add LC_CTYPE to stage 2's).
confine="/usr/bin/python3 -I -S /run/bot-bottle/confine.py 4 --"
$bb sh -c 'echo $$ > "$0/agent/cgroup.procs"; exec "$@"' $cg \
  /usr/bin/setsid -c $confine $drop /usr/bin/env -i $bb sh $files/run.sh \
  <$term >$term 2>&1 3<&- 4<$files/seccomp.bpf
status=$?
# Whatever the agent left running dies before the status line is written.
echo 1 > $cg/agent/cgroup.kill
$drop $bb kill -9 -1 2>/dev/null
i=0
while $bb grep -q 'populated 1' $cg/agent/cgroup.events 2>/dev/null && [ $i -lt 100 ]; do
  $bb sleep 0.05; i=$((i + 1))
done
$bb sleep 0.1
$bb umount /workspace 2>/dev/null
$bb umount /home/agent 2>/dev/null
$bb sync
say "status $nonce $status"
echo o > /proc/sysrq-trigger
$bb sleep 10
