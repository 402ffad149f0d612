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
ip link set lo up
ip netns add upstream-router
ip netns add upstream-web
ip link add eth0 type veth peer name eth0 netns upstream-router
ip -n upstream-router link add eth1 type veth peer name eth0 netns upstream-web
ip addr add 192.0.2.10/24 dev eth0
ip link set eth0 up
ip route replace default via 192.0.2.1
# Name lookups go to the router too (it answers "port unreachable" at once):
# nothing in the sandbox ever asks a real resolver.
echo 'nameserver 192.0.2.1' >/etc/resolv.conf
ip -n upstream-router link set lo up
ip -n upstream-router addr add 192.0.2.1/24 dev eth0
ip -n upstream-router addr add 198.51.100.1/24 dev eth1
ip -n upstream-router link set eth0 up
ip -n upstream-router link set eth1 up
ip netns exec upstream-router sysctl -qw net.ipv4.ip_forward=1
ip -n upstream-web link set lo up
ip -n upstream-web addr add 198.51.100.10/24 dev eth0
ip -n upstream-web link set eth0 up
ip -n upstream-web route add default via 198.51.100.1
mkdir -p /var/log/upstream
ip netns exec upstream-web nginx -c /etc/vethlab/upstream-web.conf
