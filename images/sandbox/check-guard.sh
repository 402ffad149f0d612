# Shared by check-lib.sh and the checker's nsenter: which machine processes
# belong to the sandbox being checked. The lab-server passes the sandbox's
# init PID and container id; a process belongs when its cgroup is the
# sandbox's or below it (a learner cannot move a process out of its subtree).
# Bash builtins only: this runs for every check, and a process start is the
# most expensive thing a check does on a busy machine.

VETHLAB_SANDBOX_PID=${VETHLAB_SANDBOX_PID:?the lab-server passes the sandbox PID}

# A process's cgroup in the pids hierarchy (v1) or its only one (v2), as the
# machine names it: sets CG and CG_KEY ("pids", or "" on v2); no subshell.
cgroup_of() { # pid
  local line id ctrl path v2=
  CG= CG_KEY=
  while IFS= read -r line; do
    id=${line%%:*}; line=${line#*:}; ctrl=${line%%:*}; path=${line#*:}
    if [ "$ctrl" = pids ]; then CG=$path CG_KEY=pids; return 0; fi
    [ "$id" = 0 ] && [ -z "$ctrl" ] && v2=$path
  done <"/proc/$1/cgroup" 2>/dev/null || return 1
  [ -n "$v2" ] && CG=$v2 CG_KEY=
  [ -n "$CG" ]
}

cgroup_of "$VETHLAB_SANDBOX_PID"
SANDBOX_CG=$CG SANDBOX_CG_KEY=$CG_KEY

in_sandbox() { # machine pid -> 0 if it is one of the sandbox's processes
  [[ $1 =~ ^[0-9]+$ ]] && [ -n "$SANDBOX_CG" ] || return 1
  cgroup_of "$1" || return 1
  [ "$CG" = "$SANDBOX_CG" ] || [[ $CG == "$SANDBOX_CG"/* ]]
}
