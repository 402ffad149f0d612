#!/bin/bash
# vethlab check primitives. Runs in the CHECKER container: the project's own
# image, in the machine's PID namespace, outside every namespace the learner
# has (the learner can neither see nor enter it), and inside the sandbox's
# user and network namespaces (the lab-server's executor enters them: root
# there, an unprivileged uid on the machine). Other places are entered from
# there with the checker's own binaries, never the sandbox's. Each primitive
# returns 0 (pass) or 1 and, on failure, prints one line
# "@reason-key|arg|arg" that the lab-server turns into a sentence in the
# learner's language.
# Arguments come as name=value pairs (local "$@").

. /opt/vethlab/check-guard.sh
# A PID reused after the sandbox went away must not be checked as the sandbox.
[[ $SANDBOX_CG == *"${VETHLAB_SANDBOX_ID:?the lab-server passes the sandbox id}"* ]] || { echo "@sandbox-gone"; exit 1; }
SANDBOX_ROOT=/proc/$VETHLAB_SANDBOX_PID/root
VL_IN_ROOT=/opt/vethlab/bin/vl-in-root
# `docker` and `nsenter` are the checker's guarded wrappers (/opt/vethlab/bin).
export PATH=/opt/vethlab/bin:/usr/sbin:/usr/bin:/sbin:/bin

fail() { local IFS='|'; echo "@$*"; return 1; }
# jq -e on a command's output: no output at all is a failure (jq -e alone passes it).
jqe() { local in; in=$(cat); [ -n "$in" ] && jq -e "$@" <<<"$in"; }
# Extra facts for the runner (e.g. a rule's packet counter): "@@value N".
fact() { echo "@@$1 $2"; }

# The machine PID of a process the sandbox's own engine names by its PID in
# the sandbox: only a process of the sandbox's subtree with that PID counts.
sandbox_host_pid() { # pid-in-sandbox
  [[ $1 =~ ^[0-9]+$ ]] || return 1
  local files=()
  mapfile -t files < <(grep -lsE "^[0-9]+:${SANDBOX_CG_KEY}:${SANDBOX_CG}(/|\$)" /proc/[0-9]*/cgroup | sed 's/cgroup$/status/')
  [ ${#files[@]} -gt 0 ] || return 1
  awk -v want="$1" '/^NSpid:/ { if ($3 == want) { split(FILENAME, a, "/"); print a[3]; found = 1; exit } } END { exit !found }' "${files[@]}" 2>/dev/null
}

# The machine PID of an inner container's main process (empty if not running).
ctr_pid() { # container
  local info id p
  info=$(docker inspect -f '{{.Id}} {{if .State.Running}}{{.State.Pid}}{{end}}' "$1" 2>/dev/null) || return 1
  read -r id p <<<"$info"
  ctr_pid_of "$id" "$p"
}

# The same from what the engine already said (its id and PID in the sandbox),
# for a check that has the container's inspect output at hand.
ctr_pid_of() { # id pid-in-sandbox
  local id=$1 p=$2
  [[ $id =~ ^[0-9a-f]{64}$ && $p =~ ^[1-9][0-9]*$ ]] || return 1
  local hp; hp=$(sandbox_host_pid "$p") || return 1
  # The engine's word is checked against the kernel: the process lives in the
  # cgroup the inner engine made for that very container id.
  grep -qsE "^[0-9]+:${SANDBOX_CG_KEY}:${SANDBOX_CG}/.*(docker/|docker-)${id}(\.scope)?\$" "/proc/$hp/cgroup" || return 1
  echo "$hp"
}

# Does the sandbox have an `ip netns` namespace of this name?
netns_exists() { [[ $1 =~ ^[A-Za-z0-9_.-]+$ ]] && "$VL_IN_ROOT" "$SANDBOX_ROOT" "/run/netns/$1" true; }

# The upstream namespaces are pinned at boot: the lab-server records their
# inodes here before any learner has a shell. A namespace bound or made over
# one of those names later is refused (a learner's fake upstream).
PINS=/run/vethlab/pins
pin_of() { awk -v n="$1" '$1 == n { print $2 }' "$PINS" 2>/dev/null; }

# Runs a command in the sandbox's `ip netns` namespace NAME, opened once: a
# pinned name must still be the namespace pinned at boot.
in_netns() { # name cmd...
  local ns=$1 want=; shift
  case "$ns" in upstream-*) want=$(pin_of "$ns"); [ -n "$want" ] || { fail netns-unpinned "$ns"; return 2; } ;; esac
  "$VL_IN_ROOT" "$SANDBOX_ROOT" "/run/netns/$ns" bash -c '
    [ -z "$2" ] || [ "$(stat -L -c %i "$1")" = "$2" ] || { echo "@netns-swapped|$3"; exit 2; }
    f=$1; shift 3; exec nsenter --net="$f" "$@"' in_netns {} "$want" "$ns" "$@"
}

# Runs a command in a file of the sandbox (or of a process's root): "{}" in its arguments is that file.
in_root() { # machine-pid path cmd...
  local pid=$1 file=$2; shift 2
  "$VL_IN_ROOT" "/proc/$pid/root" "$file" "$@"
}

# Run a command in a place: the sandbox itself, an `ip netns` namespace, or an
# inner container's network namespace.
in_place() { # netns container -- cmd...
  local ns=$1 ctr=$2; shift 3
  if [ -n "$ns" ]; then
    netns_exists "$ns" || { fail netns-missing "$ns"; return 2; }
    in_netns "$ns" "$@"
  elif [ -n "$ctr" ]; then
    local pid
    pid=$(ctr_pid "$ctr")
    [ -n "$pid" ] || { fail container-not-running "$ctr"; return 2; }
    nsenter -t "$pid" -n "$@"
  else
    "$@" # the job already runs in the sandbox's network namespace
  fi
}

# The inode of a place's network namespace: tells two namespaces apart.
ns_inode() { # netns container
  if [ -n "$1" ]; then netns_exists "$1" && in_netns "$1" stat -L -c %i /proc/self/ns/net 2>/dev/null
  elif [ -n "$2" ]; then
    local pid; pid=$(ctr_pid "$2") && [ -n "$pid" ] && stat -L -c %i "/proc/$pid/ns/net" 2>/dev/null
  else stat -L -c %i "/proc/$VETHLAB_SANDBOX_PID/ns/net"
  fi
}

place_name() { # for reasons
  if [ -n "$1" ]; then echo "netns $1"; elif [ -n "$2" ]; then echo "container $2"; else echo "the host"; fi
}

vl_netns() {
  local name= lo_up=; local "$@"
  netns_exists "$name" || { fail netns-missing "$name"; return; }
  if [ "$lo_up" = true ]; then
    in_place "$name" "" -- ip -j link show dev lo | jqe '.[0].flags | index("UP")' >/dev/null || { fail lo-down "$name"; return; }
  fi
}

# Where is the other end of veth with index $1 (our index $2)? Prints the peer's name in namespace $3.
peer_in() { # peer_index my_index netns-or-container:NAME
  local pi=$1 mi=$2 where=$3 ns="" ctr=""
  case "$where" in container:*) ctr=${where#container:} ;; *) ns=$where ;; esac
  in_place "$ns" "$ctr" -- ip -j link show 2>/dev/null | jq -r --argjson pi "$pi" --argjson mi "$mi" \
    '.[] | select(.ifindex == $pi and .link_index == $mi) | .ifname'
}

vl_link() {
  local at_netns= at_container= name= type= state= peer_netns=__unset peer_name= master=; local "$@"
  local j where; where=$(place_name "$at_netns" "$at_container")
  j=$(in_place "$at_netns" "$at_container" -- ip -d -j link show dev "$name" 2>/dev/null) || true
  case "$j" in @*) echo "$j"; return 1 ;; esac
  [ -n "$j" ] && [ "$j" != "[]" ] || { fail link-missing "$name" "$where"; return; }
  if [ -n "$type" ]; then
    local kind; kind=$(jq -r '.[0].linkinfo.info_kind // "none"' <<<"$j")
    [ "$kind" = "$type" ] || { fail link-type "$name" "$type" "$kind"; return; }
  fi
  if [ "$state" = up ]; then jq -e '.[0].flags | index("UP")' >/dev/null <<<"$j" || { fail link-down "$name" "$where"; return; }; fi
  if [ "$state" = down ]; then jq -e '.[0].flags | index("UP") | not' >/dev/null <<<"$j" || { fail link-up "$name" "$where"; return; }; fi
  if [ -n "$master" ]; then
    local m; m=$(jq -r '.[0].master // ""' <<<"$j")
    [ "$m" = "$master" ] || { fail link-master "$name" "$master" "${m:-none}"; return; }
  fi
  if [ "$peer_netns" != __unset ]; then
    local pi mi peer pns="" pctr="" mine theirs
    pi=$(jq -r '.[0].link_index // empty' <<<"$j"); mi=$(jq -r '.[0].ifindex' <<<"$j")
    [ -n "$pi" ] || { fail link-no-peer "$name"; return; }
    case "$peer_netns" in container:*) pctr=${peer_netns#container:} ;; *) pns=$peer_netns ;; esac
    local pwhere; pwhere=$(place_name "$pns" "$pctr")
    # Interface indexes repeat between namespaces: the peer's namespace must be
    # another one exactly when the kernel says the peer is elsewhere (link_netnsid).
    mine=$(ns_inode "$at_netns" "$at_container"); theirs=$(ns_inode "$pns" "$pctr")
    if jq -e '.[0] | has("link_netnsid")' >/dev/null <<<"$j"; then
      [ -n "$theirs" ] && [ "$theirs" != "$mine" ] || { fail link-peer "$name" "$pwhere"; return; }
    else
      [ "$theirs" = "$mine" ] || { fail link-peer "$name" "$pwhere"; return; }
    fi
    peer=$(peer_in "$pi" "$mi" "$peer_netns")
    [ -n "$peer" ] || { fail link-peer "$name" "$pwhere"; return; }
    if [ -n "$peer_name" ] && [ "$peer" != "$peer_name" ]; then fail link-peer-name "$name" "$peer_name" "$peer"; return; fi
  fi
  return 0
}

vl_address() {
  local at_netns= at_container= dev= cidr=; local "$@"
  local ip=${cidr%/*} len=${cidr#*/} j
  j=$(in_place "$at_netns" "$at_container" -- ip -j addr show dev "$dev" 2>/dev/null) || true
  case "$j" in @*) echo "$j"; return 1 ;; esac
  [ -n "$j" ] && [ "$j" != "[]" ] || { fail link-missing "$dev" "$(place_name "$at_netns" "$at_container")"; return; }
  jq -e --arg ip "$ip" --argjson len "$len" '.[0].addr_info[] | select(.local == $ip and .prefixlen == $len)' >/dev/null <<<"$j" ||
    { fail address-missing "$cidr" "$dev" "$(place_name "$at_netns" "$at_container")"; return; }
}

vl_route() {
  local at_netns= at_container= dst= via= dev=; local "$@"
  local j; j=$(in_place "$at_netns" "$at_container" -- ip -j route show "$dst" 2>/dev/null) || true
  case "$j" in @*) echo "$j"; return 1 ;; esac
  local where; where=$(place_name "$at_netns" "$at_container")
  [ -n "$j" ] && [ "$j" != "[]" ] || { fail route-missing "$dst" "$where"; return; }
  if [ -n "$via" ]; then jq -e --arg v "$via" '.[] | select(.gateway == $v)' >/dev/null <<<"$j" || { fail route-via "$dst" "$via" "$where"; return; }; fi
  if [ -n "$dev" ]; then jq -e --arg d "$dev" '.[] | select(.dev == $d)' >/dev/null <<<"$j" || { fail route-dev "$dst" "$dev" "$where"; return; }; fi
}

vl_sysctl() {
  local at_netns= at_container= key= value=; local "$@"
  # /proc/sys/net shows the network namespace of the process that reads it.
  local v; v=$(in_place "$at_netns" "$at_container" -- cat "/proc/sys/${key//.//}" 2>/dev/null) || true
  case "$v" in @*) echo "$v"; return 1 ;; esac
  [ "$v" = "$value" ] || { fail sysctl "$key" "$value" "${v:-?}"; return; }
}

# The rules of a chain as the kernel holds them, parsed (vl-rules): "PACKETS
# CHAIN WORD..." per rule, comments dropped, then those containing the words
# of the wanted rule in order.
rules_matching() { # place-args... -- table chain words
  local ns=$1 ctr=$2; shift 3
  local table=$1 chain=$2 want=$3
  in_place "$ns" "$ctr" -- iptables-save -c -t "$table" 2>/dev/null | /opt/vethlab/bin/vl-rules |
    awk -v chain="$chain" -v want="$want" 'BEGIN { n = split(want, w, " ") }
      $2 == chain { i = 1; for (f = 3; f <= NF && i <= n; f++) if ($f == w[i]) i++; if (i > n) print }'
}

# A container's IPv4 addresses, from its own network namespace (never the engine's word).
ctr_addrs() { # container
  local pid; pid=$(ctr_pid "$1") && [ -n "$pid" ] || return 1
  nsenter -t "$pid" -n ip -j -4 addr show 2>/dev/null | jq -r '.[] | select(.ifname != "lo") | .addr_info[].local'
}

# Keeps rules whose DNAT destination is an address of the container.
to_container_only() { # container
  local addrs; addrs=$(ctr_addrs "$1" | tr '\n' ' ')
  awk -v addrs=" $addrs" '{ for (f = 3; f < NF; f++) if ($f == "--to-destination") { split($(f + 1), a, ":"); if (index(addrs, " " a[1] " ")) print } }'
}

vl_iptables() {
  local at_netns= at_container= table=filter chain= rule= policy= to_container= carries_netns= carries_container= carries_to= carries_port=; local "$@"
  local out; out=$(in_place "$at_netns" "$at_container" -- iptables -w 2 -t "$table" -S "$chain" 2>/dev/null) || true
  case "$out" in @*) echo "$out"; return 1 ;; esac
  [ -n "$out" ] || { fail chain-missing "$table" "$chain"; return; }
  if [ -n "$policy" ]; then
    grep -q -- "^-P $chain $policy" <<<"$out" || { fail chain-policy "$table" "$chain" "$policy"; return; }
  fi
  [ -n "$rule" ] || return 0
  local lines
  lines=$(rules_matching "$at_netns" "$at_container" -- "$table" "$chain" "$rule")
  [ -z "$to_container" ] || lines=$(to_container_only "$to_container" <<<"$lines")
  [ -n "$lines" ] || { fail rule-missing "$table" "$chain" "$rule${to_container:+ -> $to_container}"; return; }
  [ -n "$carries_to" ] || return 0
  # Evidence: the rule carries the check's own probe. Its counters are read
  # by the checker right before and after (a counter the learner set is no
  # evidence), and the probe is new traffic (a new connection, so NAT
  # rules see its first packet).
  local sum='awk "{ s += \$1 } END { print s + 0 }"' before after
  before=$(eval "$sum" <<<"$lines")
  if [ -n "$carries_port" ]; then
    in_place "$carries_netns" "$carries_container" -- nc -z -w 2 "$carries_to" "$carries_port" >/dev/null 2>&1
  else
    in_place "$carries_netns" "$carries_container" -- ping -c 1 -W 2 "$carries_to" >/dev/null 2>&1
  fi
  lines=$(rules_matching "$at_netns" "$at_container" -- "$table" "$chain" "$rule")
  [ -z "$to_container" ] || lines=$(to_container_only "$to_container" <<<"$lines")
  after=$(eval "$sum" <<<"$lines")
  [ "$after" -gt "$before" ] 2>/dev/null || { fail rule-idle "$table" "$chain" "$rule" "$(place_name "$carries_netns" "$carries_container")" "$carries_to${carries_port:+:$carries_port}"; return; }
}

# A behaviour check must reach the place it names: the target may not be an
# address of the sender itself (but loopback, when the check asks for it),
# and a container or namespace sender may not rewrite its own traffic (a
# DNAT or REDIRECT rule of its own).
# Checked right after the request: an address left on the sender is caught.
sender_honest() { # netns container target
  local ns=$1 ctr=$2 target=$3
  [[ $target == 127.* ]] && return 0
  local t; t=$(in_place "$ns" "$ctr" -- ip -j route get "$target" 2>/dev/null | jq -r '.[0].type // "unicast"')
  [ "$t" != local ] || { fail target-local "$(place_name "$ns" "$ctr")" "$target"; return 1; }
  if [ -n "$ns$ctr" ]; then
    # Docker's own rules send only its DNS (127.0.0.11) to its resolver.
    in_place "$ns" "$ctr" -- iptables-save -c -t nat 2>/dev/null | /opt/vethlab/bin/vl-rules |
      awk '/ -j (DNAT|REDIRECT)( |$)/ && !/ -d 127\.0\.0\.11\/32 /' | grep -q . &&
      { fail sender-nat "$(place_name "$ns" "$ctr")"; return 1; }
  fi
  return 0
}

# A name in a check means what it means to the container it is checked from:
# resolve it as that container does (its /etc/hosts, Docker's embedded DNS).
addr_for() { # container name -> address (the name itself when it is an address or no container)
  if [ -z "$1" ] || [[ $2 =~ ^[0-9.]+$ ]]; then echo "$2"; return 0; fi
  resolve_in "$1" "$2"
}

vl_ping() {
  local from_netns= from_container= to= expect=reply; local "$@"
  local target; target=$(addr_for "$from_container" "$to")
  if [ -z "$target" ]; then
    [ "$expect" = reply ] && { fail resolve-failed "$from_container" "$to"; return; }
    return 0
  fi
  local out; out=$(in_place "$from_netns" "$from_container" -- ping -c 1 -W 2 "$target" 2>&1); local rc=$?
  [ "$expect" != reply ] || sender_honest "$from_netns" "$from_container" "$target" || return
  case "$out" in @*) echo "$out"; return 1 ;; esac
  local where; where=$(place_name "$from_netns" "$from_container")
  if [ "$expect" = reply ]; then [ $rc = 0 ] || { fail ping-failed "$where" "$to"; return; }
  else [ $rc != 0 ] || { fail ping-answered "$where" "$to"; return; }; fi
}

vl_tcp() {
  local from_netns= from_container= to= port= expect=open; local "$@"
  local target; target=$(addr_for "$from_container" "$to")
  if [ -z "$target" ]; then
    [ "$expect" = open ] && { fail resolve-failed "$from_container" "$to"; return; }
    return 0
  fi
  local out; out=$(in_place "$from_netns" "$from_container" -- nc -z -w 2 "$target" "$port" 2>&1); local rc=$?
  [ "$expect" != open ] || sender_honest "$from_netns" "$from_container" "$target" || return
  case "$out" in @*) echo "$out"; return 1 ;; esac
  local where; where=$(place_name "$from_netns" "$from_container")
  if [ "$expect" = open ]; then [ $rc = 0 ] || { fail tcp-closed "$where" "$to" "$port"; return; }
  else [ $rc != 0 ] || { fail tcp-open "$where" "$to" "$port"; return; }; fi
}

vl_http() {
  local from_netns= from_container= url= body= expect=ok; local "$@"
  local hostport=${url#http://}; hostport=${hostport%%/*}
  local host=${hostport%%:*} port=80
  [ "$hostport" != "$host" ] && port=${hostport#*:}
  local target; target=$(addr_for "$from_container" "$host")
  if [ -z "$target" ]; then
    [ "$expect" = ok ] && { fail resolve-failed "$from_container" "$host"; return; }
    return 0
  fi
  local out; out=$(in_place "$from_netns" "$from_container" -- curl -s -m 3 -f --resolve "$host:$port:$target" "$url" 2>/dev/null); local rc=$?
  [ "$expect" != ok ] || sender_honest "$from_netns" "$from_container" "$target" || return
  case "$out" in @*) echo "$out"; return 1 ;; esac
  local where; where=$(place_name "$from_netns" "$from_container")
  if [ "$expect" = fail ]; then
    [ $rc != 0 ] || { fail http-answered "$where" "$url"; return; }
    return 0
  fi
  [ $rc = 0 ] || { fail http-failed "$where" "$url"; return; }
  if [ -n "$body" ]; then grep -qF -- "$body" <<<"$out" || { fail http-body "$url" "$body"; return; }; fi
}

# Resolution as the container does it: its /etc/hosts, then its DNS server
# (only Docker's embedded 127.0.0.11: nothing else is ever queried).
resolve_in() { # container name -> prints address
  local ctr=$1 name=$2 pid
  pid=$(ctr_pid "$ctr")
  [ -n "$pid" ] || return 2
  in_root "$pid" /etc/hosts awk -v n="$name" '!/^#/ { for (i = 2; i <= NF; i++) if ($i == n) { print $1; exit } }' {} 2>/dev/null | grep . && return 0
  if in_root "$pid" /etc/resolv.conf grep -q '^nameserver 127.0.0.11' {} 2>/dev/null; then
    nsenter -t "$pid" -n dig +short +time=1 +tries=1 @127.0.0.11 "$name" A 2>/dev/null | grep -E '^[0-9.]+$' | head -n1 | grep .
    return
  fi
  return 1
}

vl_resolve() {
  local container= name= expect=resolves; local "$@"
  local addr; addr=$(resolve_in "$container" "$name"); local rc=$?
  [ $rc = 2 ] && { fail container-not-running "$container"; return; }
  if [ "$expect" = resolves ]; then [ -n "$addr" ] || { fail resolve-failed "$container" "$name"; return; }
  else [ -z "$addr" ] || { fail resolve-worked "$container" "$name" "$addr"; return; }; fi
}

# The bridge device of an inner Docker network.
bridge_of() { # network
  docker network inspect "$1" 2>/dev/null |
    jq -r '.[0] | .Options["com.docker.network.bridge.name"] // (if .Name == "bridge" then "docker0" else "br-" + .Id[0:12] end)'
}

# "ADDRESS BRIDGE" per IPv4 address of a container's interfaces, BRIDGE being
# the master of that interface's peer in the sandbox (the job runs there).
ctr_ports() { # machine pid
  local links; links=$(ip -j link show 2>/dev/null)
  nsenter -t "$1" -n ip -j -4 addr show 2>/dev/null | jq -r --argjson links "$links" \
    '.[] | select(.ifname != "lo") | .link_index as $li | ([$links[] | select(.ifindex == $li)][0].master // "-") as $m | .addr_info[] | "\(.local) \($m)"'
}

# What the inner engine says of a container, each claim checked against the
# kernel (the engine's API is the learner's: it can be a fake on its socket).
vl_container() {
  local name= running=true network_mode= networks= not_networks= links_to= published_ports= image=; local "$@"
  local j; j=$(docker inspect "$name" 2>/dev/null) || { fail container-missing "$name"; return; }
  # One jq for the scalar claims: a jq start costs about as much as the checks it serves.
  local c_running c_id c_pid m
  read -r c_running c_id c_pid m < <(jq -r '.[0] | "\(.State.Running) \(.Id) \(.State.Pid) \(.HostConfig.NetworkMode)"' <<<"$j")
  local pid=
  if [ "$running" = true ]; then
    [ "$c_running" = true ] || { fail container-not-running "$name"; return; }
    # Its process exists in the sandbox, in the cgroup of that container id.
    pid=$(ctr_pid_of "$c_id" "$c_pid")
    [ -n "$pid" ] || { fail container-not-running "$name"; return; }
  fi
  if [ -n "$network_mode" ]; then
    [ "$m" = "$network_mode" ] || { fail container-network-mode "$name" "$network_mode" "$m"; return; }
    if [ -n "$pid" ]; then
      local mine host; mine=$(stat -L -c %i "/proc/$pid/ns/net"); host=$(stat -L -c %i "/proc/$VETHLAB_SANDBOX_PID/ns/net")
      if [ "$network_mode" = host ]; then [ "$mine" = "$host" ]; else [ "$mine" != "$host" ]; fi ||
        { fail container-network-mode "$name" "$network_mode" "$m"; return; }
    fi
  fi
  local n ports=""
  [ -z "$pid" ] || ports=$(ctr_ports "$pid")
  for n in $networks; do
    local ip br
    ip=$(jq -r --arg n "$n" '.[0].NetworkSettings.Networks[$n] | if . == null then "@absent" else (.IPAddress // "") end' <<<"$j")
    [ "$ip" != "@absent" ] || { fail container-not-on "$name" "$n"; return; }
    if [ -n "$pid" ]; then
      # Its address on that network is on one of its interfaces, whose peer is a port of the network's bridge.
      br=$(bridge_of "$n")
      [ -n "$ip" ] && [ -n "$br" ] && grep -qxF "$ip $br" <<<"$ports" || { fail container-not-on "$name" "$n"; return; }
    fi
  done
  for n in $not_networks; do
    jq -e --arg n "$n" '.[0].NetworkSettings.Networks | has($n) | not' >/dev/null <<<"$j" || { fail container-on "$name" "$n"; return; }
    if [ -n "$pid" ]; then
      local br; br=$(bridge_of "$n")
      [ -z "$br" ] || ! awk '{ print $2 }' <<<"$ports" | grep -qxF "$br" || { fail container-on "$name" "$n"; return; }
    fi
  done
  if [ -n "$links_to" ]; then
    jq -e --arg t "/$links_to:" '.[0].HostConfig.Links // [] | map(startswith($t)) | any' >/dev/null <<<"$j" || { fail container-no-link "$name" "$links_to"; return; }
    # The link is a line in its hosts file naming the target at one of the target's own addresses.
    if [ -n "$pid" ]; then
      local theirs listed; theirs=" $(ctr_addrs "$links_to" | tr '\n' ' ')"
      listed=$(in_root "$pid" /etc/hosts awk -v n="$links_to" '!/^#/ { for (i = 2; i <= NF; i++) if ($i == n) print $1 }' {} 2>/dev/null)
      local a ok=
      for a in $listed; do [[ $theirs == *" $a "* ]] && ok=1; done
      [ -n "$ok" ] || { fail container-no-link "$name" "$links_to"; return; }
    fi
  fi
  if [ -n "$published_ports" ]; then
    # Published means a DNAT rule of the engine's DOCKER chain leads to one of its addresses.
    local claimed dnat=""
    claimed=$(jq '[.[0].HostConfig.PortBindings // {} | to_entries[] | .value // [] | length] | add // 0' <<<"$j")
    [ -z "$pid" ] || dnat=$(rules_matching "" "" -- nat DOCKER "-j DNAT" | to_container_only "$name")
    if [ "$published_ports" = none ]; then
      [ "$claimed" = 0 ] && [ -z "$dnat" ] || { fail container-published "$name"; return; }
    elif [ "$published_ports" = some ]; then
      [ "$claimed" -gt 0 ] && { [ "$running" != true ] || [ -n "$dnat" ]; } || { fail container-not-published "$name"; return; }
    fi
  fi
  if [ -n "$image" ]; then
    local i; i=$(jq -r '.[0].Config.Image' <<<"$j")
    [ "$i" = "$image" ] || [ "$i" = "$image:latest" ] || { fail container-image "$name" "$image" "$i"; return; }
  fi
}

# A network's claims checked against the kernel too: its bridge exists, the
# subnet is routed on it, the gateway is the bridge's own address.
vl_network() {
  local name= subnet= gateway=; local "$@"
  local j; j=$(docker network inspect "$name" 2>/dev/null) || { fail network-missing "$name"; return; }
  local br; br=$(bridge_of "$name")
  [ -n "$br" ] && ip -j -d link show dev "$br" 2>/dev/null | jqe '.[0].linkinfo.info_kind == "bridge"' >/dev/null || { fail network-missing "$name"; return; }
  if [ -n "$subnet" ]; then
    { jq -e --arg s "$subnet" '.[0].IPAM.Config | map(.Subnet == $s) | any' >/dev/null <<<"$j" &&
      ip -j route show "$subnet" dev "$br" 2>/dev/null | jqe 'length > 0' >/dev/null; } ||
      { fail network-subnet "$name" "$subnet" "$(jq -r '.[0].IPAM.Config[0].Subnet' <<<"$j")"; return; }
  fi
  if [ -n "$gateway" ]; then
    ip -j addr show dev "$br" 2>/dev/null | jqe --arg g "$gateway" '.[0].addr_info[] | select(.local == $g)' >/dev/null ||
      { fail network-gateway "$name" "$gateway"; return; }
  fi
}

vl_listening() {
  local at_netns= at_container= port= process=; local "$@"
  local out; out=$(in_place "$at_netns" "$at_container" -- ss -Hltnp "sport = :$port" 2>/dev/null) || true
  case "$out" in @*) echo "$out"; return 1 ;; esac
  [ -n "$out" ] || { fail not-listening "$(place_name "$at_netns" "$at_container")" "$port"; return; }
  [ -n "$process" ] || return 0
  # A process's name is whatever its file is called: the listener's
  # executable must be the very program (its bytes, compared with the
  # checker's own copy of the distribution's binary).
  local ref; ref=$(command -v "$process" 2>/dev/null) && [ -x "$ref" ] || { fail listening-other "$port" "$process"; return; }
  ref=$(sha256sum "$ref" | cut -d' ' -f1)
  local pid
  for pid in $(grep -o 'pid=[0-9]*' <<<"$out" | cut -d= -f2 | sort -u); do
    in_sandbox "$pid" || continue
    [ "$(sha256sum "/proc/$pid/exe" 2>/dev/null | cut -d' ' -f1)" = "$ref" ] && return 0
  done
  fail listening-other "$port" "$process"
}
