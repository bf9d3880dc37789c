/**
 * `npm start` until the agent daemon lands: runs a shell in a PTY through spawnSession(),
 * streams its output, and prints how it ended.
 */

import { spawnSession, SpawnError } from './index.js';

const script = 'echo "hello from $(uname -sr) on $(tty)"; stty size; id; exit 3';
try {
  const s = await spawnSession({ cmd: 'sh', args: ['-c', script], tty: true, rows: 30, cols: 100 });
  s.stdout.pipe(process.stdout);
  const exit = await s.exited;
  console.log(`\nexited: ${JSON.stringify(exit)}`);
} catch (err) {
  if (err instanceof SpawnError) console.error(`spawn failed: ${err.kind} at ${err.stage} (${err.errnoName})`);
  throw err;
}
