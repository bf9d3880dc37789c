// Logs go to stderr as text or one JSON object per line; levels filter.
import t from 'tap';

import { createLogger } from '../../ts/log/logger.js';

t.test('json: one object per line with time, level, msg and fields (bigints as strings)', async (t) => {
  const lines: string[] = [];
  const log = createLogger('info', 'json', (l) => lines.push(l));
  log.info('listening', { address: 'unix:/x', seq: 5n });
  log.debug('hidden');
  t.equal(lines.length, 1);
  t.ok(lines[0]!.endsWith('\n'));
  const o = JSON.parse(lines[0]!) as Record<string, unknown>;
  t.same(Object.keys(o), ['time', 'level', 'msg', 'address', 'seq']);
  t.same([o.level, o.msg, o.address, o.seq], ['info', 'listening', 'unix:/x', '5']);
  t.match(o.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
});

t.test('text: time, padded level, message and key=value fields, quoted when needed', async (t) => {
  const lines: string[] = [];
  const log = createLogger('debug', 'text', (l) => lines.push(l));
  log.warn('peer gone', { conn: 'client-0', reason: 'peer ended' });
  t.match(lines[0], /^\S+Z WARN  peer gone conn=client-0 reason="peer ended"\n$/);
});

t.test('levels: error < warn < info < debug', async (t) => {
  const lines: string[] = [];
  const log = createLogger('warn', 'text', (l) => lines.push(l));
  log.error('a');
  log.warn('b');
  log.info('c');
  log.debug('d');
  t.same(lines.map((l) => l.split(' ').slice(2).join(' ').trim()), ['a', 'b']);
});
