/** The one logger (pino): JSON lines, pretty only when a person watches a TTY. */
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(level: string): Logger {
  const pretty = process.stdout.isTTY && process.env.CI === undefined;
  return pino({
    level,
    base: undefined,
    transport: pretty ? { target: 'pino-pretty', options: { translateTime: 'HH:MM:ss', ignore: 'pid,hostname' } } : undefined,
  });
}
