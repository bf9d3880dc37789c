// A bulk stream's slabs are garbage that V8 should collect young: the JS side allocates young
// ballast per slab (ts/native/index.ts, BALLAST_SLOTS_PER_SLAB_BYTE) so that scavenges free dead
// slabs before external memory reaches V8's 64 MiB full-collection trigger. In a file of its own:
// the forced collections of other tests tighten V8's old-generation limit, which then starts full
// collections of its own for unrelated reasons.
import t from 'tap';
import { constants as perfConstants, PerformanceObserver, type PerformanceEntry } from 'node:perf_hooks';

import { spawnSession } from '../../ts/index.js';

const MiB = 1024 * 1024;
const SLAB = 256 * 1024;

t.test('a bulk stream is collected young: no full collection every 64 MiB of output', async (t) => {
  // Without the ballast this transfer takes 8 full collections (512 MiB / 64 MiB); with it, 0 or 1.
  const TOTAL = 512 * MiB;
  const majors: PerformanceEntry[] = [];
  const isMajor = (e: PerformanceEntry): boolean => (e as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind === perfConstants.NODE_PERFORMANCE_GC_MAJOR;
  const observer = new PerformanceObserver((list) => majors.push(...list.getEntries().filter(isMajor)));
  observer.observe({ entryTypes: ['gc'] });
  const s = await spawnSession({ cmd: 'head', args: ['-c', String(TOTAL), '/dev/zero'], stdin: 'ignore' });
  let bytes = 0;
  let inSlabs = 0;
  s.stdout.on('data', (c: Buffer) => {
    bytes += c.length;
    if (c.buffer.byteLength === SLAB) inSlabs += c.length;
  });
  s.stderr?.resume();
  t.same(await s.exited, { code: 0, signal: null, reason: 'exited' });
  majors.push(...observer.takeRecords().filter(isMajor));
  observer.disconnect();
  t.equal(bytes, TOTAL, 'every byte arrived');
  t.ok(inSlabs >= TOTAL - MiB, 'the stream went through slabs');
  t.ok(majors.length <= 2, `${majors.length} full collections for 512 MiB (7 or 8 without the ballast)`);
});
