/**
 * What a sandbox and its checker may do, in one place: capabilities and the
 * project's seccomp profile. The sandbox runs in a user namespace (root in it
 * is uid 100000+ on the machine), so its capabilities act only on its own
 * namespaces; this list keeps even those to what the lessons and the inner
 * engine use. Tested by test/integration/escape.test.ts.
 */

/**
 * The sandbox's capabilities, and why each is there.
 * Every capability an inner container gets by default (Docker's default set)
 * must be here too: runc inside cannot grant what it lacks.
 */
export const SANDBOX_CAPS = [
  'CHOWN', // inner images and the learner's files
  'DAC_OVERRIDE', // root reading files of other users, as root on a host does
  'FOWNER',
  'FSETID',
  'KILL',
  'SETGID',
  'SETUID',
  'SETPCAP', // runc drops capabilities for inner containers
  'SETFCAP', // inner image layers carry file capabilities (ping)
  'MKNOD', // inner containers' /dev
  'AUDIT_WRITE', // default set of inner containers
  'SYS_CHROOT', // runc pivot_root/chroot for inner containers
  'NET_BIND_SERVICE',
  'NET_BROADCAST',
  'NET_ADMIN', // the whole course: links, addresses, routes, bridges, iptables, sysctls
  'NET_RAW', // ping, tcpdump
  'SYS_ADMIN', // mount (overlays, cgroups, ip netns), namespaces, the inner dockerd
  'SYS_PTRACE', // nsenter -t <pid> into inner containers, strace
  'IPC_LOCK',
  'IPC_OWNER',
] as const;

/**
 * The checker's: none. It runs as the machine's root in the machine's user
 * and PID namespaces, with every capability dropped. It still may enter a
 * sandbox: the owner of a user namespace (root, who created it) holds every
 * capability inside it, so `nsenter -U -n -t <sandbox pid>` takes the checker
 * into the sandbox's user and network namespaces, where it reads state with
 * its own binaries; on the machine itself it can do nothing root's
 * capabilities would allow.
 */
export const CHECKER_CAPS = [] as const;

/** Only under the operator's opt-out (no user namespaces): entering a sandbox then takes root's capabilities. */
export const UNSAFE_ROOT_CHECKER_CAPS = ['SYS_ADMIN', 'SYS_PTRACE', 'NET_ADMIN', 'NET_RAW', 'DAC_OVERRIDE'] as const;

type SeccompRule = { names: string[]; action: 'SCMP_ACT_ERRNO'; errnoRet: number; comment: string };

const EPERM = 1;
const ENOSYS = 38;

/**
 * Allowed unless listed: the lessons need namespaces, mounts and raw sockets,
 * which a default-deny list for ordinary containers forbids. Each rule names
 * a machine-wide surface no lesson uses.
 */
const DENIED: SeccompRule[] = [
  { names: ['open_by_handle_at', 'name_to_handle_at'], action: 'SCMP_ACT_ERRNO', errnoRet: EPERM, comment: 'file handles: the "shocker" read of the machine\'s disk' },
  { names: ['kexec_load', 'kexec_file_load', 'reboot'], action: 'SCMP_ACT_ERRNO', errnoRet: EPERM, comment: 'replacing or rebooting the kernel' },
  { names: ['init_module', 'finit_module', 'delete_module', 'create_module', 'query_module', 'get_kernel_syms'], action: 'SCMP_ACT_ERRNO', errnoRet: EPERM, comment: 'kernel modules' },
  { names: ['clock_settime', 'clock_settime64', 'clock_adjtime', 'clock_adjtime64', 'adjtimex', 'settimeofday', 'stime'], action: 'SCMP_ACT_ERRNO', errnoRet: EPERM, comment: "the machine's clock" },
  { names: ['syslog'], action: 'SCMP_ACT_ERRNO', errnoRet: EPERM, comment: "the machine's kernel log (dmesg)" },
  { names: ['acct', 'swapon', 'swapoff', 'quotactl', 'quotactl_fd', 'nfsservctl', 'lookup_dcookie', 'uselib', '_sysctl'], action: 'SCMP_ACT_ERRNO', errnoRet: EPERM, comment: 'machine-wide accounting, swap, quotas and legacy interfaces' },
  { names: ['iopl', 'ioperm', 'vm86', 'vm86old'], action: 'SCMP_ACT_ERRNO', errnoRet: EPERM, comment: 'hardware I/O ports' },
  { names: ['bpf', 'perf_event_open', 'userfaultfd', 'fanotify_init'], action: 'SCMP_ACT_ERRNO', errnoRet: EPERM, comment: 'kernel programs, performance counters and page-fault handling: kernel attack surface no lesson uses (tcpdump filters are classic BPF on a socket)' },
  // ENOSYS, not EPERM: the inner runc joins a session keyring and falls back only on ENOSYS.
  { names: ['keyctl', 'add_key', 'request_key'], action: 'SCMP_ACT_ERRNO', errnoRet: ENOSYS, comment: "the kernel keyrings, which are not namespaced" },
];

/** Every ABI a process can call the kernel through (on x86-64, int 0x80 reaches the i386 table). */
const ARCHITECTURES: Record<string, string[]> = {
  x64: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'],
  arm64: ['SCMP_ARCH_AARCH64', 'SCMP_ARCH_ARM'],
};

export const SECCOMP_PROFILE = {
  defaultAction: 'SCMP_ACT_ALLOW',
  architectures: ARCHITECTURES[process.arch] ?? [],
  syscalls: DENIED,
};

/** The checker reads; it never mounts, traces or unshares anything. */
const CHECKER_DENIED: SeccompRule[] = [
  { names: ['mount', 'umount', 'umount2', 'pivot_root', 'fsopen', 'fsconfig', 'fsmount', 'fspick', 'move_mount', 'open_tree', 'mount_setattr'], action: 'SCMP_ACT_ERRNO', errnoRet: EPERM, comment: 'no mounts: its /proc/sys and /sys stay read-only' },
  { names: ['ptrace', 'process_vm_readv', 'process_vm_writev', 'unshare', 'sethostname', 'setdomainname'], action: 'SCMP_ACT_ERRNO', errnoRet: EPERM, comment: 'no tracing of other processes, no new namespaces' },
];

export const CHECKER_SECCOMP_PROFILE = { ...SECCOMP_PROFILE, syscalls: [...DENIED, ...CHECKER_DENIED] };

/** A profile as the engine API takes it (`seccomp=<json>`, as the CLI sends a file's content). */
export function seccompOption(profile: typeof SECCOMP_PROFILE = SECCOMP_PROFILE): string {
  return `seccomp=${JSON.stringify(profile)}`;
}
