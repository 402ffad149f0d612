#!/bin/bash
# The sandbox's simulated upstream, all inside network namespaces this sandbox
# owns (the sandbox itself runs with --network none, so nothing leaves it):
#
#   sandbox eth0 192.0.2.10/24 --- eth0 192.0.2.1 [upstream-router] eth1 198.51.100.1 --- eth0 198.51.100.10 [upstream-web]
#
# The sandbox's default route points at the router. The router knows nothing
# of container subnets, so a container's packet only gets an answer once the
# sandbox SNATs it to 192.0.2.10 (lesson 6). The web server answers every
# request with the address it saw and logs it.
set -euo pipefail
# One `ip -batch` per namespace: a process start costs milliseconds on a busy
# machine, and a room's sandboxes boot at once.
ip -batch - <<'IP'
link set lo up
netns add upstream-router
netns add upstream-web
link add eth0 type veth peer name eth0 netns upstream-router
addr add 192.0.2.10/24 dev eth0
link set eth0 up
route replace default via 192.0.2.1
IP
# Name lookups go to the router too (it answers "port unreachable" at once):
# nothing in the sandbox ever asks a real resolver.
echo 'nameserver 192.0.2.1' >/etc/resolv.conf
ip -n upstream-router -batch - <<'IP'
link add eth1 type veth peer name eth0 netns upstream-web
link set lo up
addr add 192.0.2.1/24 dev eth0
addr add 198.51.100.1/24 dev eth1
link set eth0 up
link set eth1 up
IP
ip -n upstream-web -batch - <<'IP'
link set lo up
addr add 198.51.100.10/24 dev eth0
link set eth0 up
route add default via 198.51.100.1
IP
# /proc/sys/net shows the network namespace of the process that writes it.
nsenter --net=/run/netns/upstream-router bash -c 'echo 1 >/proc/sys/net/ipv4/ip_forward'
mkdir -p /var/log/upstream
nsenter --net=/run/netns/upstream-web nginx -c /etc/vethlab/upstream-web.conf
