# Shared by check-lib.sh and the checker's nsenter: which machine processes
# belong to the sandbox being checked. The lab-server passes the sandbox's
# init PID and container id; a process belongs when its cgroup is the
# sandbox's or below it (a learner cannot move a process out of its subtree).

VETHLAB_SANDBOX_PID=${VETHLAB_SANDBOX_PID:?the lab-server passes the sandbox PID}
# The sandbox's pids cgroup (or its only one, on cgroup v2), as the machine names it.
SANDBOX_CG=$(sed -n -E 's/^[0-9]+:(pids|):(\/.*)$/\1 \2/p' "/proc/$VETHLAB_SANDBOX_PID/cgroup" 2>/dev/null | sort | tail -n 1 | cut -d' ' -f2-)
SANDBOX_CG_KEY=$(sed -n -E 's/^[0-9]+:(pids|):(\/.*)$/\1/p' "/proc/$VETHLAB_SANDBOX_PID/cgroup" 2>/dev/null | sort | tail -n 1)

in_sandbox() { # machine pid -> 0 if it is one of the sandbox's processes
  [[ $1 =~ ^[0-9]+$ ]] && [ -n "$SANDBOX_CG" ] || return 1
  local line
  line=$(grep -m1 -E "^[0-9]+:${SANDBOX_CG_KEY}:" "/proc/$1/cgroup" 2>/dev/null) || return 1
  line=${line#*:*:}
  [ "$line" = "$SANDBOX_CG" ] || [[ $line == "$SANDBOX_CG"/* ]]
}
