/**
 * Runs once around the whole suite: after the last test, no sandbox
 * container or volume made by a test (instance test-*) may be left on the
 * engine. A real server's sandboxes, and other test runs', are never touched.
 */
import { randomBytes } from 'node:crypto';
import { connectDocker } from '../../lab-server/sandbox/docker';

/** This run's id: test sandboxes are labelled test-<run>-*, so concurrent runs never remove each other's. */
const RUN = randomBytes(4).toString('hex');

export function setup(): void {
  process.env.VETHLAB_TEST_RUN = RUN;
}

const isTest = (labels: Record<string, string> | undefined) => labels?.['vethlab.instance']?.startsWith(`test-${RUN}-`) ?? false;

export async function teardown(): Promise<void> {
  const docker = connectDocker();
  const left = (await docker.listContainers({ all: true, filters: { label: ['vethlab.instance'] } })).filter((c) => isTest(c.Labels));
  for (const c of left) await docker.getContainer(c.Id).remove({ force: true, v: true }).catch(() => {});
  const { Volumes } = await docker.listVolumes({ filters: { label: ['vethlab.instance'] } });
  for (const v of (Volumes ?? []).filter((v) => isTest(v.Labels))) await docker.getVolume(v.Name).remove().catch(() => {});
  if (left.length > 0) {
    throw new Error(`tests left ${left.length} sandbox container(s) behind: ${left.map((c) => c.Names.join(',')).join(' ')}`);
  }
}
