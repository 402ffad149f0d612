import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../lab-server/config';

describe('loadConfig', () => {
  it('has defaults for a single machine', () => {
    const c = loadConfig({}, '/srv/vethlab');
    expect(c).toMatchObject({ port: 3000, host: '127.0.0.1', poolSize: 1, ttlMs: 7_200_000, idleTimeoutMs: 1_800_000, instance: 'default' });
    expect(c.limits).toEqual({ memoryBytes: 512 * 1024 ** 2, pids: 512, cpus: 1, diskBytes: 256 * 1024 ** 2 });
    expect(c.dataDir).toBe('/srv/vethlab/.vethlab');
  });

  it('keeps the memory-backed sandbox disk inside the memory limit, with room to run', () => {
    expect(loadConfig({ VETHLAB_MEMORY: '1g', VETHLAB_DISK: '768m' }).limits.diskBytes).toBe(768 * 1024 ** 2);
    expect(() => loadConfig({ VETHLAB_MEMORY: '512m', VETHLAB_DISK: '512m' })).toThrow(/VETHLAB_DISK: between 16m and VETHLAB_MEMORY minus 128m/);
    expect(() => loadConfig({ VETHLAB_DISK: '1m' })).toThrow(/VETHLAB_DISK/);
    expect(() => loadConfig({ VETHLAB_DISK: 'lots' })).toThrow(/VETHLAB_DISK: a size like 512m or 1g/);
  });

  it('parses sizes, durations and lists', () => {
    const c = loadConfig({ VETHLAB_MEMORY: '1g', VETHLAB_TTL: '90m', VETHLAB_IDLE_TIMEOUT: '45s', VETHLAB_ALLOWED_ORIGINS: 'http://a:1, http://b:2', VETHLAB_CPUS: '0.5' });
    expect(c.limits.memoryBytes).toBe(1024 ** 3);
    expect(c.ttlMs).toBe(90 * 60_000);
    expect(c.idleTimeoutMs).toBe(45_000);
    expect(c.allowedOrigins).toEqual(['http://a:1', 'http://b:2']);
    expect(c.limits.cpus).toBe(0.5);
  });

  it('names every bad setting and the value it got', () => {
    expect(() => loadConfig({ PORT: 'eighty', VETHLAB_TTL: 'forever', VETHLAB_PIDS: '3' })).toThrow(
      /PORT:[\s\S]*"eighty"[\s\S]*VETHLAB_PIDS:[\s\S]*VETHLAB_TTL: a duration like 90s, 30m or 2h \(got "forever"\)/,
    );
  });
});
