/**
 * Escape probes, as a learner (root in a sandbox) would try them. They probe,
 * never fire: every write puts back the value just read (a sysctl, a cgroup
 * limit, the clock's tick, a release_agent), nothing is loaded, rebooted or
 * mounted from the machine, and a block device is only opened for reading.
 * Each probe is a script that prints one line per attempt: "REFUSED <what>"
 * or "ESCAPED <what>"; a probe that cannot run prints "CANNOT-RUN <why>",
 * which the tests count as a failure, never a skip.
 */

/** Perl (in every Debian image as perl-base) makes the raw system calls; no compiler needed. */
const PERL_SYSCALLS = String.raw`
my %nr = (
  x86_64  => { open_by_handle_at => 304, adjtimex => 159 },
  aarch64 => { open_by_handle_at => 265, adjtimex => 171 },
);
chomp(my $arch = ` + '`uname -m`' + String.raw`);
my $sys = $nr{$arch} or do { print "CANNOT-RUN no syscall numbers for $arch\n"; exit 0 };
`;

/**
 * The "shocker" read of the machine's disk: open_by_handle_at() with an ext4
 * handle for inode 2 (the root directory) through a file on each given mount.
 * Arguments: the paths to try.
 */
export const SHOCKER = PERL_SYSCALLS + String.raw`
my $tried = 0;
for my $p (@ARGV) {
  sysopen(my $m, $p, 0) or next;
  $tried++;
  # struct file_handle { u32 handle_bytes; int handle_type; u32 ino; u32 gen }: FILEID_INO32_GEN (1), root inode 2.
  my $h = pack('LlLL', 8, 1, 2, 0);
  my $fd = syscall($sys->{open_by_handle_at}, fileno($m), $h, 0200000);
  if ($fd < 0) { print "REFUSED open_by_handle_at via $p: $!\n"; next }
  opendir(my $d, "/proc/self/fd/$fd");
  my @names = $d ? readdir($d) : ();
  print "ESCAPED open_by_handle_at via $p lists the machine's root: @names[0..(@names > 8 ? 8 : $#names)]\n";
}
print "CANNOT-RUN no host-backed file could be opened among @ARGV\n" unless $tried;
`;

/** adjtimex(ADJ_TICK) with the tick it has now: a change of nothing, refused or not. */
export const ADJTIMEX = PERL_SYSCALLS + String.raw`
my $buf = "\0" x 208;
my $r = syscall($sys->{adjtimex}, $buf);
if ($r < 0) { print "REFUSED adjtimex read: $!\n"; exit 0 }
my $tick = unpack('q', substr($buf, 88, 8));
substr($buf, 0, 4) = pack('l', 0x4000);    # ADJ_TICK
substr($buf, 88, 8) = pack('q', $tick);
$r = syscall($sys->{adjtimex}, $buf);
print $r < 0 ? "REFUSED adjtimex ADJ_TICK=$tick: $!\n" : "ESCAPED adjtimex set the machine's tick (to its own value $tick)\n";
`;

/** Host-backed mounts in this mount namespace: files of a disk file system (the shocker needs one). */
export const HOST_BACKED_MOUNTS = String.raw`awk '{ for (i = 7; i < NF; i++) if ($i == "-") { if ($(i + 1) ~ /^(ext[234]|xfs|btrfs)$/) print $5; break } }' /proc/self/mountinfo`;

/** The device (major:minor) of the first host-backed mount. */
export const HOST_DISK_DEVICE = String.raw`awk '{ for (i = 7; i < NF; i++) if ($i == "-") { if ($(i + 1) ~ /^(ext[234]|xfs|btrfs)$/) { print $3; exit } break } }' /proc/self/mountinfo`;

/**
 * Remounts read-write, fresh proc and sysfs mounts, then the real question:
 * can a global sysctl (vm.swappiness) be written, through any of them?
 */
export const KERNEL_SETTINGS = String.raw`
wb() { # path: write back the value it has
  local v; v=$(cat "$1" 2>/dev/null) || { echo "REFUSED read $1"; return; }
  if (echo "$v" > "$1") 2>/dev/null; then echo "ESCAPED wrote $1 (its own value $v)"; else echo "REFUSED write $1"; fi
}
for m in / /proc/sys /sys $(awk '$2 ~ "^/sys/fs/cgroup/" { print $2 }' /proc/self/mounts); do
  if mount -o remount,rw "$m" 2>/dev/null; then echo "NOTE remounted $m read-write"; fi
done
wb /proc/sys/vm/swappiness
d=$(mktemp -d)
mkdir -p "$d/proc" "$d/sys"
if mount -t proc proc "$d/proc" 2>/dev/null; then echo "NOTE mounted a fresh proc"; wb "$d/proc/sys/vm/swappiness"; umount "$d/proc"; fi
if mount -t sysfs sysfs "$d/sys" 2>/dev/null; then echo "NOTE mounted a fresh sysfs"; wb "$d/sys/kernel/mm/transparent_hugepage/enabled" ; umount "$d/sys"; fi
true
`;

/** The machine's kernel log. */
export const DMESG = String.raw`if dmesg >/dev/null 2>&1; then echo "ESCAPED dmesg reads the machine's kernel log"; else echo "REFUSED dmesg"; fi
[ -e /dev/kmsg ] && { if head -c 1 /dev/kmsg >/dev/null 2>&1; then echo "ESCAPED /dev/kmsg readable"; else echo "REFUSED /dev/kmsg"; fi; }
true`;

/** The sandbox's own limits, written back unchanged: a learner who may write them may raise them. */
export const OWN_LIMITS = String.raw`
wb() { local v; v=$(cat "$1" 2>/dev/null) || { echo "CANNOT-RUN read $1"; return; }
  if (echo "$v" > "$1") 2>/dev/null; then echo "ESCAPED may set $1 (wrote its own value $v)"; else echo "REFUSED write $1"; fi; }
if [ -e /sys/fs/cgroup/memory/memory.limit_in_bytes ]; then
  wb /sys/fs/cgroup/memory/memory.limit_in_bytes; wb /sys/fs/cgroup/memory/memory.memsw.limit_in_bytes 2>/dev/null
  wb /sys/fs/cgroup/pids/pids.max; wb /sys/fs/cgroup/cpu/cpu.cfs_quota_us
else
  wb /sys/fs/cgroup/memory.max; wb /sys/fs/cgroup/pids.max; wb /sys/fs/cgroup/cpu.max
fi
`;

/** A block device node of the machine's disk, opened for reading only. Argument: major:minor. */
export const BLOCK_DEVICE = String.raw`
dev=$1; n=/tmp/vethlab-probe-disk
if mknod "$n" b "\${dev%%:*}" "\${dev##*:}" 2>/dev/null; then
  if head -c 512 "$n" >/dev/null 2>&1; then echo "ESCAPED read the machine's disk $dev"; else echo "REFUSED read of disk node $dev"; fi
  rm -f "$n"
else echo "REFUSED mknod $dev"; fi
`.replace(/\\\$/g, '$');

/** Kernel modules: the capability, modprobe, and a link kind whose module is not built in. */
export const MODULES = String.raw`
bnd=$(awk '/^CapBnd/ { print $2 }' /proc/self/status)
if (( (0x$bnd >> 16) & 1 )); then echo "ESCAPED CAP_SYS_MODULE in the bounding set"; else echo "REFUSED CAP_SYS_MODULE"; fi
if modprobe dummy 2>/dev/null; then echo "ESCAPED modprobe"; else echo "REFUSED modprobe"; fi
if ip link add vl-probe0 type dummy 2>/dev/null; then
  # Built in or already loaded: no module was loaded by this, and the link lives in the sandbox.
  ip link del vl-probe0; echo "NOTE dummy links exist here without loading anything"
else echo "REFUSED ip link add type dummy"; fi
`;

/**
 * The cgroup release_agent escape needs a writable release_agent: every one
 * this view shows, and the machine's hierarchy roots' notify_on_release,
 * written back unchanged.
 */
export const RELEASE_AGENT = String.raw`
found=0
for f in /sys/fs/cgroup/*/release_agent /vethlab/sysfs-anchor/fs/cgroup/*/release_agent /vethlab/sysfs-anchor/fs/cgroup/*/notify_on_release; do
  [ -e "$f" ] || continue
  found=1
  v=$(cat "$f" 2>/dev/null)
  if (printf '%s\n' "$v" > "$f") 2>/dev/null; then echo "ESCAPED may set $f"; else echo "REFUSED write $f"; fi
done
[ $found = 1 ] || echo "NOTE no release_agent visible"
`;

/** Lines of a probe's output by verdict. */
export function verdicts(output: string): { escaped: string[]; refused: string[]; cannot: string[] } {
  const lines = output.split('\n');
  return {
    escaped: lines.filter((l) => l.startsWith('ESCAPED')),
    refused: lines.filter((l) => l.startsWith('REFUSED')),
    cannot: lines.filter((l) => l.startsWith('CANNOT-RUN')),
  };
}
