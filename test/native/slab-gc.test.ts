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
  // Without the ballast this transfer takes 7 or 8 full collections started by external memory
  // (512 MiB / 64 MiB); with it none. Full collections V8 starts for other reasons (a busy machine
  // can bring a few) are not counted.
  const TOTAL = 512 * MiB;
  const majors: PerformanceEntry[] = [];
  const isMajor = (e: PerformanceEntry): boolean => {
    const detail = (e as PerformanceEntry & { detail?: { kind?: number; flags?: number } }).detail;
    return detail?.kind === perfConstants.NODE_PERFORMANCE_GC_MAJOR && ((detail.flags ?? 0) & perfConstants.NODE_PERFORMANCE_GC_FLAGS_ALL_EXTERNAL_MEMORY) !== 0;
  };
  const observer = new PerformanceObserver((list) => majors.push(...list.getEntries().filter(isMajor)));
  observer.observe({ entryTypes: ['gc'] });
  // dd writes 1 MiB at a time, so its first write fills the default 64 KiB pipe and the reader
  // switches to slabs at once (head's 8 KiB writes can leave a fast reader on small buffers for a
  // while first).
  const s = await spawnSession({ cmd: 'dd', args: ['if=/dev/zero', 'bs=1M', `count=${TOTAL / MiB}`, 'status=none'], stdin: 'ignore' });
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
  t.ok(inSlabs >= TOTAL - 4 * MiB, `${inSlabs} of ${TOTAL} bytes went through slabs`);
  t.ok(majors.length <= 1, `${majors.length} full collections for external memory in 512 MiB (7 or 8 without the ballast)`);
});
