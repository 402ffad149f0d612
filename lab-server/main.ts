/**
 * `npm start` ends here (after scripts/setup): run the lab-server until
 * Ctrl-C, then remove every sandbox. VETHLAB_KEEP_SANDBOXES=1 keeps them
 * for the next start to re-adopt (a restart mid-workshop).
 */
import path from 'node:path';
import { INSTRUCTOR_SIGN_IN_PAGE } from '../protocol/api';
import { createLabServer } from './app';
import { loadConfig } from './config';
import { createLogger } from './log';

async function main(): Promise<void> {
  const config = loadConfig();
  const log = createLogger(config.logLevel);
  // Last resort: the request guard should catch everything a client sends. A
  // throw that gets here is a bug; one learner's bad input must not end every
  // learner's terminal, so it is logged loudly and the server keeps serving.
  process.on('uncaughtException', (err) => log.fatal({ err }, 'uncaught exception (a bug); still serving'));
  process.on('unhandledRejection', (err) => log.fatal({ err }, 'unhandled rejection (a bug); still serving'));
  const server = await createLabServer(config, { log });
  console.log(`\n  vethlab is serving the course at ${server.publicUrl}`);
  // The token itself is never printed or put in a URL (browser history, proxy logs): it stays in the data folder.
  console.log(`  Instructors: sign in at ${server.publicUrl}${INSTRUCTOR_SIGN_IN_PAGE} with the token in ${config.instructorToken ? 'VETHLAB_INSTRUCTOR_TOKEN' : path.join(config.dataDir, 'instructor-token')}`);
  console.log('  (Ctrl-C stops it and removes the sandboxes)\n');
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    const keepSandboxes = process.env.VETHLAB_KEEP_SANDBOXES === '1';
    log.info({ signal, keepSandboxes }, 'stopping');
    await server.close({ keepSandboxes });
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
}

main().catch((err: unknown) => {
  console.error(`\nvethlab: ${(err as Error).message}\n`);
  process.exit(1);
});
