#!/bin/bash
# vethlab sandbox entrypoint: turn this container into a private Docker host.
# Runs under the engine's init (--init). Prints "vethlab: ready" once the inner
# engine answers and the preloaded images exist; the lab-server waits for that line.
set -uo pipefail
say() { echo "vethlab: $*"; }
# Where boot time goes, in the container's log (bash builtins: no process per mark).
t0=${EPOCHREALTIME/./}
mark() { local now=${EPOCHREALTIME/./}; echo "vethlab: boot $1 $(( (now - t0) / 1000 )) ms"; }
fail() { echo "vethlab: FAILED: $*"; exit 1; }

# 1. cgroups. The container has a private cgroup namespace but the engine mounts
# the v1 hierarchies read-only. Mount them again so the inner runc can create
# child cgroups; they show only this container's subtree (the host's
# release_agent is never visible). Only mounts under /sys/fs/cgroup/: the sysfs
# anchor (below) brings the machine's own cgroup mounts along, never touched.
if ! grep -q ' /sys/fs/cgroup cgroup2 ' /proc/self/mounts; then
  mount -o remount,rw /sys/fs/cgroup 2>/dev/null || true
  while read -r _ dir fstype opts _; do
    [ "$fstype" = cgroup ] || continue
    case "$dir" in /sys/fs/cgroup/*) ;; *) continue ;; esac
    sub=""
    for o in ${opts//,/ }; do
      case "$o" in
        rw|ro|nosuid|nodev|noexec|relatime|clone_children|cpuset_v2_mode) ;;
        name=*) sub="${sub:+$sub,}none,$o" ;;
        *) sub="${sub:+$sub,}$o" ;;
      esac
    done
    umount "$dir" && mount -t cgroup -o "$sub" cgroup "$dir" || fail "remount cgroup $dir ($sub)"
  done < <(grep ' cgroup ' /proc/self/mounts)
  probe=/sys/fs/cgroup/pids/cgroup.procs
else
  mount -o remount,rw /sys/fs/cgroup || fail "remount cgroup2"
  probe=/sys/fs/cgroup/cgroup.procs
fi

mark cgroups
# 2. Storage. The image is read-only (--read-only); everything the learner or
# the inner engine writes lands on the sandbox disk, a size-limited tmpfs
# charged to this sandbox's memory: its size is the quota and no write reaches
# the machine's disk. Writable directories are overlays with their upper layer
# there; the inner engine's store and /tmp are plain directories on it.
DISK=/vethlab/disk
if mountpoint -q "$DISK"; then
  # Docker's bind-mounted hosts, hostname and resolv.conf vanish under the /etc
  # overlay: carry their contents over.
  keep=$(mktemp -d -p /run) || fail "no /run"
  for f in hosts hostname resolv.conf; do cp "/etc/$f" "$keep/$f" 2>/dev/null || true; done
  for d in etc home mnt opt root srv usr/local var; do
    mkdir -p "$DISK/upper/$d" "$DISK/work/$d"
    mount -t overlay overlay -o "lowerdir=/$d,upperdir=$DISK/upper/$d,workdir=$DISK/work/$d" "/$d" || fail "make /$d writable"
  done
  for f in hosts hostname resolv.conf; do [ -f "$keep/$f" ] && cat "$keep/$f" >"/etc/$f"; done
  rm -rf "$keep"
  for d in tmp var/lib/docker var/lib/containerd; do
    mkdir -p "$DISK/$d" "/$d" && mount --bind "$DISK/$d" "/$d" || fail "mount /$d on the sandbox disk"
  done
  chmod 1777 /tmp
fi

mark storage
# 3. Only the per-namespace network sysctls become writable (ip_forward and
# friends); /proc/sys/kernel stays read-only and /proc/sysrq-trigger masked.
mount --bind /proc/sys/net /proc/sys/net && mount -o remount,bind,rw /proc/sys/net || fail "make /proc/sys/net writable"

mark sysctls
# 4. The simulated upstream "internet", made of namespaces inside this sandbox.
/usr/local/sbin/vethlab-upstream || fail "upstream network"

mark upstream
# 5. The inner Docker engine. Its image store comes ready-made from setup
# (a copy of an engine's store after the imports below): unpacking it costs
# a fraction of the CPU of importing, which a room starting at once queues for.
mkdir -p /var/log
if [ -f /opt/vethlab/images/store.tar ] && [ ! -e /var/lib/docker/image ]; then
  tar --xattrs --xattrs-include='*' --numeric-owner -C /var/lib/docker -xf /opt/vethlab/images/store.tar || fail "unpack the preloaded images"
fi
# In a user namespace the inner runc may create child cgroups only once the
# lab-server has handed this sandbox its own cgroup directories (never the
# limit files): wait for that, seen as their owner becoming this namespace's root.
if ! grep -qE '^ +0 +0 ' /proc/self/uid_map; then
  for _ in $(seq 1 600); do [ "$(stat -c %u "$probe")" = 0 ] && break; sleep 0.05; done
  [ "$(stat -c %u "$probe")" = 0 ] || fail "the lab-server did not delegate this sandbox's cgroups"
fi
mark delegated
# containerd runs beside dockerd, with one Go processor: an idle sandbox
# (its containerd, mostly) cost about 1% of a core, and one Go processor
# instead of two made that 10-13% less, side by side on this machine kind (the
# same containerd with two processors, alone or under dockerd, did not).
mkdir -p /run/containerd
GOMAXPROCS=1 containerd --config /etc/vethlab/containerd.toml >/var/log/containerd.log 2>&1 &
dockerd --host=unix:///var/run/docker.sock --containerd=/run/containerd/containerd.sock >/var/log/dockerd.log 2>&1 &
for _ in $(seq 1 600); do
  # The socket test is a builtin, and curl starts far cheaper than the docker
  # client (a Go program) on a machine where a room's sandboxes boot at once.
  [ -S /var/run/docker.sock ] && [ "$(curl -s -m 1 --unix-socket /var/run/docker.sock http://engine/_ping)" = OK ] && break
  sleep 0.05
done
[ "$(curl -s -m 2 --unix-socket /var/run/docker.sock http://engine/_ping)" = OK ] || { tail -n 20 /var/log/containerd.log /var/log/dockerd.log; fail "inner dockerd did not answer"; }

mark inner-engine
# 6. Preloaded images (no registry exists): built from Debian packages at setup,
# imported here only when the store above did not bring them.
load_image() { # name, then import changes
  local name=$1; shift
  docker image inspect "$name" >/dev/null 2>&1 && return 0
  local args=()
  for c in "$@"; do args+=(-c "$c"); done
  docker import "${args[@]}" "/opt/vethlab/images/${name%%:*}.tar" "$name" >/dev/null
}
# The seeded store brings them; a store-less image (setup's seeding boot) imports.
if [ ! -f /opt/vethlab/images/store.tar ]; then
  load_image nginx:latest 'CMD ["nginx", "-g", "daemon off;"]' 'EXPOSE 80' 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' &
  p1=$!
  load_image busybox:latest 'CMD ["sh"]' &
  p2=$!
  wait $p1 || fail "import nginx image"
  wait $p2 || fail "import busybox image"
fi

mark images
mkdir -p /run/vethlab && touch /run/vethlab/ready
# The first terminal's login shell, before any learner arrives: attaching to
# it is a socket connection, not a shell start.
if [ -n "${VETHLAB_TERMINAL:-}" ]; then
  TERM=xterm-256color COLORTERM=truecolor dtach -n "/run/vethlab/terminal-$VETHLAB_TERMINAL.sock" -r winch \
    /usr/local/sbin/vethlab-shell "terminal-$VETHLAB_TERMINAL" || say "could not start the shell of terminal $VETHLAB_TERMINAL"
fi
mark shell
say ready
exec sleep infinity
