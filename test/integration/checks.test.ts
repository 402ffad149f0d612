/**
 * Every check primitive against real sandbox state built for it, each once
 * where it must pass and once where it must fail, evaluated in the checker
 * exactly as labs evaluate them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { reasonText } from '../../protocol/reasons';
import { CheckExecutor } from '../../lab-server/checks/lab-runner';
import type { Primitive } from '../../lab-server/labs/schema';
import { createLabSandboxes, removeAll } from '../../lab-server/labs/steps';
import type { Sandbox } from '../../lab-server/sandbox/sandbox-engine';
import { testEngine } from '../support/lab-server';

const engine = testEngine();
const executor = new CheckExecutor(engine);
let hosts: Map<string, Sandbox>;

const STATE = `
ip netns add red && ip netns add blue
ip -n red link set lo up
ip link add veth-r netns red type veth peer name veth-b netns blue
ip -n red addr add 10.0.0.1/24 dev veth-r && ip -n red link set veth-r up
ip -n blue addr add 10.0.0.2/24 dev veth-b && ip -n blue link set veth-b up
ip link add br0 type bridge && ip link add veth-h type veth peer name veth-x && ip link set veth-h master br0
ip -n red route add default via 10.0.0.2
ip netns exec red sysctl -qw net.ipv4.ip_forward=0
iptables -t nat -A POSTROUTING -s 10.0.0.0/24 -j MASQUERADE
docker network create --subnet 10.10.0.0/24 net1 >/dev/null
docker run -d --name web --net net1 nginx >/dev/null
docker run -d --name client --net net1 nginx >/dev/null
docker run -d --name lonely -p 8080:80 nginx >/dev/null
sleep 1
`;

beforeAll(async () => {
  hosts = await createLabSandboxes(engine, { id: 'checks', hosts: ['sandbox'], setup: [{ run: STATE }] }, { sessionId: `chk${Date.now().toString(36)}`, learner: 'checks-test' });
}, 180_000);

afterAll(async () => {
  await removeAll(engine, hosts);
});

async function verdict(p: Primitive): Promise<{ ok: boolean; reason: string }> {
  const [r] = await executor.evaluate(hosts, [{ leaf: { host: 'sandbox', primitive: p }, timeoutSec: 10 }]);
  return { ok: r!.ok, reason: r!.reason ? reasonText(r!.reason, 'en') : '' };
}

const cases: [string, Primitive, Primitive, RegExp][] = [
  ['netns', { kind: 'netns', name: 'red', lo_up: true }, { kind: 'netns', name: 'blue', lo_up: true }, /lo in namespace blue is still down/],
  ['link peer', { kind: 'link', at: { netns: 'red' }, name: 'veth-r', type: 'veth', state: 'up', peer_netns: 'blue', peer_name: 'veth-b' }, { kind: 'link', at: { netns: 'red' }, name: 'veth-r', peer_netns: 'red' }, /other end of veth-r is not in/],
  ['link master', { kind: 'link', name: 'veth-h', master: 'br0' }, { kind: 'link', name: 'veth-x', master: 'br0' }, /veth-x is attached to none, not br0/],
  ['address', { kind: 'address', at: { netns: 'blue' }, dev: 'veth-b', cidr: '10.0.0.2/24' }, { kind: 'address', at: { netns: 'blue' }, dev: 'veth-b', cidr: '10.0.0.9/24' }, /does not have address 10\.0\.0\.9\/24/],
  ['route', { kind: 'route', at: { netns: 'red' }, dst: 'default', via: '10.0.0.2' }, { kind: 'route', at: { netns: 'blue' }, dst: 'default' }, /has no route to default/],
  ['sysctl', { kind: 'sysctl', key: 'net.ipv4.ip_forward', value: '1' }, { kind: 'sysctl', at: { netns: 'red' }, key: 'net.ipv4.ip_forward', value: '1' }, /ip_forward is 0/],
  ['iptables rule', { kind: 'iptables', table: 'nat', chain: 'POSTROUTING', rule: '-s 10.0.0.0/24 -j MASQUERADE' }, { kind: 'iptables', table: 'nat', chain: 'POSTROUTING', rule: '-s 10.9.0.0/24 -j MASQUERADE' }, /no rule in POSTROUTING/],
  ['iptables policy', { kind: 'iptables', table: 'filter', chain: 'INPUT', policy: 'ACCEPT' }, { kind: 'iptables', table: 'filter', chain: 'INPUT', policy: 'DROP' }, /policy of INPUT/],
  ['ping', { kind: 'ping', from: { netns: 'red' }, to: '10.0.0.2', expect: 'reply' }, { kind: 'ping', from: { netns: 'red' }, to: '10.0.0.3', expect: 'reply' }, /gets no reply/],
  ['ping by name, as the container resolves it', { kind: 'ping', from: { container: 'client' }, to: 'web', expect: 'reply' }, { kind: 'ping', from: { container: 'lonely' }, to: 'web', expect: 'reply' }, /cannot resolve the name web/],
  ['tcp', { kind: 'tcp', from: { container: 'client' }, to: 'web', port: 80, expect: 'open' }, { kind: 'tcp', from: { container: 'client' }, to: 'web', port: 81, expect: 'open' }, /cannot connect to web port 81/],
  ['http by name', { kind: 'http', from: { container: 'client' }, url: 'http://web/', body: 'Welcome to nginx', expect: 'ok' }, { kind: 'http', from: { container: 'client' }, url: 'http://web/', body: 'Goodbye', expect: 'ok' }, /does not contain "Goodbye"/],
  ['resolve', { kind: 'resolve', container: 'client', name: 'web', expect: 'resolves' }, { kind: 'resolve', container: 'lonely', name: 'web', expect: 'resolves' }, /lonely cannot resolve the name web/],
  ['container', { kind: 'container', name: 'lonely', running: true, networks: ['bridge'], published_ports: 'some' }, { kind: 'container', name: 'web', running: true, published_ports: 'some' }, /web publishes no port/],
  ['network gateway (not asked for)', { kind: 'network', name: 'net1', subnet: '10.10.0.0/24', gateway: '10.10.0.1' }, { kind: 'network', name: 'net1', gateway: '10.10.0.254' }, /does not have gateway 10\.10\.0\.254/],
  ['listening', { kind: 'listening', at: { container: 'web' }, port: 80, process: 'nginx' }, { kind: 'listening', at: { container: 'web' }, port: 8080 }, /nothing in container web listens on port 8080/],
  ['shell', { kind: 'shell', run: 'docker inspect -f "{{.State.Running}}" web | grep -q true' }, { kind: 'shell', run: 'exit 3', reason: 'custom reason' }, /custom reason/],
];

describe('check primitives on real state', () => {
  for (const [name, pass, fail, why] of cases) {
    it(`${name}: passes when true, fails with a reason when not`, async () => {
      const good = await verdict(pass);
      expect(good, good.reason).toMatchObject({ ok: true });
      const bad = await verdict(fail);
      expect(bad.ok).toBe(false);
      expect(bad.reason).toMatch(why);
    });
  }
});
