#!/bin/bash
# Build the inner images' root file systems (nginx, busybox) from the sandbox
# root file system's own Debian packages; no registry exists here.
# Usage: build.sh <sandbox-rootfs> <out-dir>   -> <out-dir>/{nginx,busybox}.tar
set -euo pipefail
ROOTFS=$1 OUT=$2
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$OUT"

base() { # a tiny FHS skeleton with busybox applets in /bin
  local d=$1
  mkdir -p "$d"/{bin,sbin,etc,tmp,root,run,proc,sys,dev,usr/bin,usr/sbin,var/log}
  chmod 1777 "$d/tmp"
  cp "$ROOTFS/usr/bin/busybox" "$d/bin/busybox"
  for applet in $(chroot "$ROOTFS" /usr/bin/busybox --list); do
    [ "$applet" = busybox ] && continue
    [ -e "$d/bin/$applet" ] || ln -s busybox "$d/bin/$applet"
  done
  printf 'root:x:0:0:root:/root:/bin/sh\nwww-data:x:33:33:www-data:/var/www:/bin/false\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$d/etc/passwd"
  printf 'root:x:0:\nwww-data:x:33:\nnogroup:x:65534:\n' >"$d/etc/group"
  printf 'hosts: files dns\n' >"$d/etc/nsswitch.conf"
}

copy_with_libs() { # rootfs-relative binaries, with the shared libraries they load
  local d=$1; shift
  for bin in "$@"; do
    cp -a --parents "$bin" "$d" 2>/dev/null || (cd "$ROOTFS" && cp -L --parents ".$bin" "$d")
    chroot "$ROOTFS" ldd "$bin" | grep -o '/[^ ]*' | while read -r lib; do
      (cd "$ROOTFS" && cp -L --parents ".$lib" "$d")
    done
  done
}

# busybox: the multi-call binary and nothing else.
B=$WORK/busybox
base "$B"
tar -C "$B" --numeric-owner -cf "$OUT/busybox.tar" .

# nginx: Debian's real nginx with the official image's layout (logs to the
# container's stdout/stderr, page in /usr/share/nginx/html), plus curl and the
# busybox tools so learners can look around inside it.
N=$WORK/nginx
base "$N"
(cd "$ROOTFS" && for f in usr/sbin/nginx usr/bin/curl; do cp -L --parents "$f" "$N"; done)
for bin in /usr/sbin/nginx /usr/bin/curl; do
  chroot "$ROOTFS" ldd "$bin" | grep -o '/[^ ]*' | sort -u | while read -r lib; do
    (cd "$ROOTFS" && cp -L --parents ".$lib" "$N")
  done
done
mkdir -p "$N"/etc/nginx/conf.d "$N"/usr/share/nginx/html "$N"/var/log/nginx "$N"/var/lib/nginx "$N"/var/cache/nginx
cp "$ROOTFS/etc/nginx/mime.types" "$N/etc/nginx/mime.types"
cp "$ROOTFS/usr/share/nginx/html/index.html" "$N/usr/share/nginx/html/index.html"
cp "$HERE/nginx.conf" "$N/etc/nginx/nginx.conf"
cp "$HERE/nginx-default.conf" "$N/etc/nginx/conf.d/default.conf"
ln -sf /dev/stdout "$N/var/log/nginx/access.log"
ln -sf /dev/stderr "$N/var/log/nginx/error.log"
tar -C "$N" --numeric-owner -cf "$OUT/nginx.tar" .
