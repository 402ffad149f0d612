import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ClientMessage, MAX_COLS, MAX_ROWS, TERMINAL_PROTOCOL_VERSION } from '../../protocol/terminal';
import { REASON_TEMPLATES, reasonText } from '../../protocol/reasons';

describe('terminal protocol', () => {
  it('accepts every well-formed client message', () => {
    const valid = fc.oneof(
      fc.record({
        type: fc.constant('hello' as const),
        v: fc.constant(TERMINAL_PROTOCOL_VERSION),
        sessionId: fc.stringMatching(/^[A-Za-z0-9_-]{8,64}$/),
        terminalId: fc.stringMatching(/^[a-z0-9-]{1,32}$/),
        cols: fc.integer({ min: 2, max: MAX_COLS }),
        rows: fc.integer({ min: 1, max: MAX_ROWS }),
      }),
      fc.record({ type: fc.constant('input' as const), data: fc.string({ maxLength: 500 }) }),
      fc.record({ type: fc.constant('resize' as const), cols: fc.integer({ min: 2, max: MAX_COLS }), rows: fc.integer({ min: 1, max: MAX_ROWS }) }),
      fc.record({ type: fc.constant('ack' as const), seq: fc.nat() }),
      fc.record({ type: fc.constant('ping' as const), t: fc.double({ noNaN: true, noDefaultInfinity: true }) }),
    );
    fc.assert(fc.property(valid, (m) => ClientMessage.safeParse(m).success));
  });

  it('rejects absurd sizes, negative offsets and unknown types', () => {
    for (const bad of [
      { type: 'resize', cols: 0, rows: 10 },
      { type: 'resize', cols: 80, rows: 1e6 },
      { type: 'resize', cols: 80.5, rows: 24 },
      { type: 'ack', seq: -1 },
      { type: 'hello', v: 2, sessionId: 'AAAAAAAA', terminalId: 'main', cols: 80, rows: 24 },
      { type: 'hello', v: 1, sessionId: '../../etc', terminalId: 'main', cols: 80, rows: 24 },
      { type: 'shutdown' },
      null,
      'input',
    ]) {
      expect(ClientMessage.safeParse(bad).success, JSON.stringify(bad)).toBe(false);
    }
  });
});

describe('check reasons', () => {
  it('words every reason key in every language with all its arguments', () => {
    const en = REASON_TEMPLATES.en!;
    for (const [locale, templates] of Object.entries(REASON_TEMPLATES)) {
      expect(Object.keys(templates).sort(), locale).toEqual(Object.keys(en).sort());
      for (const [key, t] of Object.entries(templates)) {
        const used = new Set([...t.matchAll(/\{(\d+)\}/g)].map((m) => m[1]));
        const enUsed = new Set([...en[key]!.matchAll(/\{(\d+)\}/g)].map((m) => m[1]));
        expect(used, `${locale} ${key}`).toEqual(enUsed);
      }
    }
    expect(reasonText({ key: 'link-master', args: ['veth1', 'br0', 'docker0'] }, 'en')).toBe('veth1 is attached to docker0, not br0');
    expect(reasonText({ key: 'netns-missing', args: ['red'] }, 'zh-Hans')).toBe('网络命名空间 red 不存在');
    expect(reasonText({ text: 'plain', i18n: { 'zh-Hans': '中文' } }, 'zh-Hans')).toBe('中文');
  });
});
