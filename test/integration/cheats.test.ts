/**
 * The cheat battery: a learner, root in the sandbox, tries to turn a task
 * green without doing it, typing into a real terminal of a real session; the
 * task must stay red. Each attack was first run against the code before its
 * defence and turned the task green there (see the commit messages). Every
 * setup step of an attack must succeed (`must`), so no attack is vacuous; the
 * attacks probe the checks only: nothing leaves the sandbox's namespaces.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LabStatus } from '../../protocol/lab';
import { LabCatalog, parseLab } from '../../lab-server/labs/catalog';
import { Learner, type TerminalConnection } from '../support/terminal-client';
import { startTestServer, type TestServer } from '../support/lab-server';

const probe = parseLab(
  'cheat-probe.lab.yaml',
  `
id: cheat-probe
title: Cheat probe
tasks:
  - id: blue
    title: A namespace blue that reaches the router (the learner never makes it)
    check:
      all:
        - { kind: netns, name: blue }
        - { kind: ping, from: { netns: blue }, to: 192.0.2.1 }
  - id: slow
    title: An address nobody answers (its check takes its full time)
    check: { kind: ping, to: 192.0.2.99 }
  - id: page
    title: web serves the real page (the check prints what web served)
    check:
      kind: shell
      run: |
        ip=$(docker inspect -f '{{.NetworkSettings.IPAddress}}' web) && [ -n "$ip" ] || exit 1
        body=$(curl -s -m 2 "http://$ip/")
        echo "web said: $body"
        [ "$body" = "the real page" ]
  - id: linked
    title: A container web2 on the default bridge, linked to db, with a published port
    check: { kind: container, name: web2, networks: [bridge], links_to: db, published_ports: some }
  - id: net
    title: A network net1 with subnet 10.77.0.0/24 and gateway 10.77.0.1
    check: { kind: network, name: net1, subnet: 10.77.0.0/24, gateway: 10.77.0.1 }
solution:
  - run: ip netns add blue
`,
);

let server: TestServer;
const sessions: { learner: Learner; sessionId: string; term: TerminalConnection }[] = [];

beforeAll(async () => {
  server = await startTestServer({}, { catalog: LabCatalog.of([...LabCatalog.load().all(), probe]), checkIntervalMs: 60_000 });
});

afterAll(async () => {
  for (const s of sessions) {
    s.term.close();
    await s.learner.endSession(s.sessionId).catch(() => {});
  }
  await server?.close();
});

/** A new learner in a fresh session of `lab`, at a shell prompt. */
async function learnerIn(lab: string) {
  const learner = new Learner(server.url);
  const { sessionId } = await learner.startSession(lab);
  const term = await learner.openTerminal(sessionId);
  await term.waitForReady();
  await term.waitForText(/root@[\w-]+:~# /);
  sessions.push({ learner, sessionId, term });
  const check = async () => (await learner.request('POST', `/api/sessions/${sessionId}/check`)).json as LabStatus;
  const status = async (task: string) => (await check()).tasks.find((t) => t.id === task)!.status;
  /** The task is not passed (its status and reason in the message). */
  const red = async (task: string) => {
    const t = (await check()).tasks.find((x) => x.id === task)!;
    expect(t.status, JSON.stringify(t)).not.toBe('passed');
  };
  /** Types a command; it must succeed (the attack really happened). Returns its output. */
  const must = async (command: string, timeoutMs = 60_000) => {
    const out = await term.run(`${command}; echo "@rc=$?"`, timeoutMs);
    const m = /@rc=(\d+)\s*$/.exec(out);
    expect(m?.[1], `${command}\n${out}`).toBe('0');
    return out.replace(/@rc=\d+\s*$/, '');
  };
  /** Writes a file in the sandbox as a learner pastes one. */
  const write = (path: string, text: string) => must(`echo ${Buffer.from(text).toString('base64')} | base64 -d > ${path}`);
  return { learner, sessionId, term, check, status, red, must, write };
}

describe('the checks stay red under each cheat', () => {
  it('1: no result file of the checker is in reach (a loop writing 0 into every .rc finds none)', async () => {
    const l = await learnerIn('cheat-probe');
    await l.write(
      '/root/zero-rc.sh',
      `while :; do
  for f in /proc/[0-9]*/root/tmp/*/*.rc /proc/[0-9]*/root/tmp/*.rc; do
    [ -f "$f" ] && echo 0 > "$f" 2>/dev/null && echo "$f" >> /root/seen
  done
done
`,
    );
    // In a subshell: not a job of the learner's shell, so no job notice mixes into the output below.
    await l.must('touch /root/seen; (bash /root/zero-rc.sh >/dev/null 2>&1 & echo $! > /root/loop.pid)');
    const states: string[] = [];
    for (let i = 0; i < 4; i++) states.push(await l.status('blue'));
    await l.must('kill "$(cat /root/loop.pid)"');
    const seen = (await l.must('sort -u /root/seen')).split('\n').filter((f) => f.startsWith('/proc/')).join('\n');
    expect(states, `after writing 0 into ${seen.split('\n').length} files`).not.toContain('passed');
    expect(seen, 'result files the learner reached').toBe('');
  });

  it('2: the checker cannot be entered to bind a fake check-lib.sh over its own', async () => {
    const l = await learnerIn('cheat-probe');
    await l.write(
      '/root/fake-lib.sh',
      `for f in vl_netns vl_link vl_address vl_route vl_sysctl vl_iptables vl_ping vl_tcp vl_http vl_resolve vl_container vl_network vl_listening; do eval "$f() { return 0; }"; done\n`,
    );
    // Any process with the checker's library under another root than the sandbox's (the checker,
    // if it can be seen): enter its mount namespace, copy the fake into its own /tmp, bind it over the library.
    const out = await l.must(
      `me=$(stat -L -c %d:%i /proc/self/root/); for p in /proc/[0-9]*; do [ -e "$p/root/opt/vethlab/check-lib.sh" ] && [ "$(stat -L -c %d:%i $p/root/)" != "$me" ] && echo "found \${p#/proc/}"; done; true`,
    );
    const found = [...out.matchAll(/^found (\d+)$/gm)].map((m) => m[1]!);
    for (const pid of found) {
      const r = await l.term.run(`nsenter -t ${pid} -m sh -c "cat /proc/$$/root/root/fake-lib.sh > /tmp/fake-lib.sh && mount --bind /tmp/fake-lib.sh /opt/vethlab/check-lib.sh" && echo BOUND`);
      if (r.includes('BOUND')) break;
    }
    expect(await l.status('blue'), `after binding the fake (${found.length} checker processes found)`).not.toBe('passed');
    expect(found, 'checker processes in the learner’s sight').toEqual([]);
  });

  it('3: a fake Docker API on /run/docker.sock does not pass a container or network check', async () => {
    const l = await learnerIn('cheat-probe');
    const container = {
      Id: 'a'.repeat(64),
      Name: '/web2',
      State: { Status: 'running', Running: true, Pid: 1 },
      Config: { Image: 'nginx' },
      HostConfig: { NetworkMode: 'default', Links: ['/db:/web2/db'], PortBindings: { '80/tcp': [{ HostIp: '', HostPort: '8080' }] } },
      NetworkSettings: { IPAddress: '172.17.0.2', Networks: { bridge: { IPAddress: '172.17.0.2', IPPrefixLen: 16, Gateway: '172.17.0.1' } } },
    };
    const network = { Name: 'net1', Id: 'b'.repeat(64), Driver: 'bridge', Scope: 'local', IPAM: { Driver: 'default', Config: [{ Subnet: '10.77.0.0/24', Gateway: '10.77.0.1' }] }, Options: {}, Containers: {} };
    await l.write(
      '/root/fake-api.pl',
      `use strict; use IO::Socket::UNIX; use Socket;
my $c = '${JSON.stringify(container)}';
my $n = '${JSON.stringify(network)}';
unlink '/run/docker.sock';
my $s = IO::Socket::UNIX->new(Type => SOCK_STREAM, Local => '/run/docker.sock', Listen => 16) or die "listen: $!";
while (my $k = $s->accept) {
  my $req = ''; while (my $line = <$k>) { $req .= $line; last if $line eq "\\r\\n" }
  my ($m, $p) = $req =~ /^(\\S+) (\\S+)/;
  my $b = $p =~ m{/containers/web2/json} ? $c : $p =~ m{/networks/net1} ? $n : $p =~ m{/_ping} ? 'OK' : undef;
  my $st = defined $b ? '200 OK' : '404 Not Found'; $b //= '{"message":"No such object"}';
  print $k "HTTP/1.1 $st\\r\\nContent-Type: application/json\\r\\nApi-Version: 1.41\\r\\nContent-Length: " . length($b) . "\\r\\nConnection: close\\r\\n\\r\\n" . ($m eq 'HEAD' ? '' : $b);
  close $k;
}
`,
    );
    await l.must('mv /run/docker.sock /run/docker.sock.real && (perl /root/fake-api.pl >/root/fake-api.log 2>&1 &) && sleep 1');
    // The fake answers as the learner likes: the sandbox's own docker believes it.
    expect(await l.must(`docker inspect -f '{{.State.Pid}} {{.HostConfig.Links}}' web2`)).toMatch(/1 \[\/db:\/web2\/db\]/);
    expect(await l.must(`docker network inspect -f '{{range .IPAM.Config}}{{.Subnet}} {{.Gateway}}{{end}}' net1`)).toContain('10.77.0.0/24 10.77.0.1');
    await l.red('linked');
    await l.red('net');
  });

  it('4a: a fake upstream web server on lo of the client container does not pass path-out', async () => {
    const l = await learnerIn('snat');
    await l.must(`docker exec client sh -c 'echo "You came from 192.0.2.10" > /usr/share/nginx/html/index.html'`);
    await l.must(`nsenter -t "$(docker inspect -f '{{.State.Pid}}' client)" -n ip addr add 198.51.100.10/32 dev lo`);
    expect(await l.must('docker exec client curl -s -m 3 http://198.51.100.10/')).toContain('You came from 192.0.2.10');
    await l.red('path-out');
  });

  it('4b: another namespace bound over /run/netns/upstream-router does not pass by-hand', async () => {
    const l = await learnerIn('dnat');
    await l.must('mkdir -p /root/www && echo "Hello from the inside container" > /root/www/index.html');
    // fake-router (192.0.2.1) -- fake-srv (192.0.2.10, serving the text on 8081): nothing is local to the sender.
    await l.must(
      'ip netns add fake-router && ip netns add fake-srv && ip link add name fr0 type veth peer name fs0 netns fake-srv && ip link set fr0 netns fake-router' +
        ' && ip -n fake-router addr add 192.0.2.1/24 dev fr0 && ip -n fake-srv addr add 192.0.2.10/24 dev fs0' +
        ' && ip -n fake-router link set fr0 up && ip -n fake-srv link set fs0 up && ip -n fake-router link set lo up && ip -n fake-srv link set lo up' +
        ' && ip netns exec fake-srv busybox httpd -p 8081 -h /root/www',
    );
    await l.must('mount --bind /run/netns/fake-router /run/netns/upstream-router');
    expect(await l.must('ip netns exec upstream-router curl -s -m 3 http://192.0.2.10:8081/')).toContain('Hello from the inside container');
    await l.red('by-hand');
  });

  it('5a: a counter set with iptables -R -c after the baseline does not pass snat-rule', async () => {
    const l = await learnerIn('snat');
    await l.must('iptables -t nat -A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE');
    await l.status('snat-rule'); // the baseline, taken with no traffic through the rule
    const n = (await l.must(`iptables -t nat -S POSTROUTING | grep -c '^-A'`)).trim();
    await l.must(`iptables -t nat -R POSTROUTING ${n} -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE -c 999 999`);
    expect(await l.must('iptables -t nat -L POSTROUTING -v -n -x')).toMatch(/^\s*999\s+999\s+MASQUERADE/m);
    await l.red('snat-rule');
  });

  it('5b: a RETURN rule whose comment reads "-j MASQUERADE" does not pass snat-rule', async () => {
    const l = await learnerIn('snat');
    await l.must('iptables -t nat -A POSTROUTING -s 172.17.0.0/16 -m comment --comment "x -j MASQUERADE x" -j RETURN');
    await l.status('snat-rule');
    const n = (await l.must(`iptables -t nat -S POSTROUTING | grep -c '^-A'`)).trim();
    await l.must(`iptables -t nat -R POSTROUTING ${n} -s 172.17.0.0/16 -m comment --comment "x -j MASQUERADE x" -j RETURN -c 999 999`);
    await l.red('snat-rule');
  });

  it('5c: a copy of nc named nginx does not pass "listening process: nginx"', async () => {
    const l = await learnerIn('network-stack');
    await l.must('docker run -d --name web-host --net=host busybox sleep 86400 >/dev/null');
    await l.write('/root/serve.sh', `while :; do printf 'HTTP/1.0 200 OK\\r\\n\\r\\nWelcome to nginx\\n' | /root/nginx -N -l 80 >/dev/null 2>&1; done\n`);
    await l.must('cp "$(command -v nc)" /root/nginx && (bash /root/serve.sh >/dev/null 2>&1 &) && sleep 1');
    expect(await l.must('ss -Hltnp "sport = :80"')).toContain('"nginx"');
    expect(await l.must('curl -s -m 3 http://127.0.0.1/')).toContain('Welcome to nginx');
    await l.red('host-nginx');
  });

  it('6: another container published on 8081 serving the text does not pass by-hand', async () => {
    const l = await learnerIn('dnat');
    await l.must('docker run -d --name decoy -p 8081:80 nginx >/dev/null && sleep 1');
    await l.must(`docker exec decoy sh -c 'echo "Hello from the inside container" > /usr/share/nginx/html/index.html'`);
    expect(await l.must('ip netns exec upstream-router curl -s -m 3 http://192.0.2.10:8081/')).toContain('Hello from the inside container');
    await l.red('by-hand');
  });

  it('7: result lines forged in text a check prints (an HTTP body) pass nothing', async () => {
    const l = await learnerIn('cheat-probe');
    await l.must('docker run -d --name web nginx >/dev/null && sleep 1');
    // Leaves 0 and 1 are blue's (a run numbers the open tasks' leaves in order); a check keeps its last 5 lines.
    const forged = '<<<leaf 0 0>>>\\n<<<leaf 1 0>>>';
    await l.must(`docker exec web sh -c 'printf "x\\n${forged}\\n" > /usr/share/nginx/html/index.html'`);
    expect(await l.must('docker exec web cat /usr/share/nginx/html/index.html')).toContain('<<<leaf 0 0>>>');
    const st = await l.check();
    expect(st.tasks.find((t) => t.id === 'blue')!.status).not.toBe('passed');
    expect(st.tasks.find((t) => t.id === 'page')!.status).not.toBe('passed');
  });
});
