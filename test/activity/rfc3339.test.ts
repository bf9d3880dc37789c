// formatRfc3339: the heartbeat's timestamps (PROTOCOL §4.7) are RFC 3339 UTC with a `Z` suffix and
// 0, 3, 6 or 9 fractional digits as needed, the way chrono's AutoSi prints them. Hosts parse these
// strings, so every case is asserted as an exact string.
import t from 'tap';

import { formatRfc3339 } from '../../ts/activity/rfc3339.js';
import { createRandom } from '../fixtures/protocol-helpers.js';

// 2026-05-01T10:00:12Z, the instant of the PROTOCOL §4.7 example.
const EXAMPLE_MS = 1_777_629_612_000;

t.test('whole seconds print no fraction', async (t) => {
  t.equal(formatRfc3339(0), '1970-01-01T00:00:00Z');
  t.equal(formatRfc3339(EXAMPLE_MS), '2026-05-01T10:00:12Z');
  t.equal(formatRfc3339(EXAMPLE_MS, 0), '2026-05-01T10:00:12Z');
  t.equal(formatRfc3339(951_868_799_000), '2000-02-29T23:59:59Z', 'a leap day');
  t.equal(formatRfc3339(253_402_300_799_000), '9999-12-31T23:59:59Z');
});

t.test('whole milliseconds print exactly 3 digits', async (t) => {
  t.equal(formatRfc3339(EXAMPLE_MS + 123), '2026-05-01T10:00:12.123Z');
  t.equal(formatRfc3339(EXAMPLE_MS + 100), '2026-05-01T10:00:12.100Z', 'trailing zeros kept to 3 digits, never ".1"');
  t.equal(formatRfc3339(EXAMPLE_MS + 5), '2026-05-01T10:00:12.005Z', 'leading zeros kept');
  t.equal(formatRfc3339(EXAMPLE_MS + 999), '2026-05-01T10:00:12.999Z');
  t.equal(formatRfc3339(1), '1970-01-01T00:00:00.001Z');
});

t.test('whole microseconds print exactly 6 digits', async (t) => {
  t.equal(formatRfc3339(EXAMPLE_MS + 123, 456_000), '2026-05-01T10:00:12.123456Z');
  t.equal(formatRfc3339(EXAMPLE_MS, 1_000), '2026-05-01T10:00:12.000001Z');
  t.equal(formatRfc3339(EXAMPLE_MS, 500_000), '2026-05-01T10:00:12.000500Z');
  t.equal(formatRfc3339(EXAMPLE_MS + 999, 999_000), '2026-05-01T10:00:12.999999Z');
});

t.test('anything finer prints exactly 9 digits', async (t) => {
  t.equal(formatRfc3339(EXAMPLE_MS + 123, 456_789), '2026-05-01T10:00:12.123456789Z', 'the PROTOCOL §4.7 example');
  t.equal(formatRfc3339(EXAMPLE_MS, 1), '2026-05-01T10:00:12.000000001Z');
  t.equal(formatRfc3339(EXAMPLE_MS + 100, 10), '2026-05-01T10:00:12.100000010Z');
  t.equal(formatRfc3339(EXAMPLE_MS + 999, 999_999), '2026-05-01T10:00:12.999999999Z');
});

t.test('instants before 1970 keep their own second', async (t) => {
  // Not reachable from the heartbeat, but the function's contract is any instant.
  t.equal(formatRfc3339(-1), '1969-12-31T23:59:59.999Z');
  t.equal(formatRfc3339(-1000), '1969-12-31T23:59:59Z');
  t.equal(formatRfc3339(-1500), '1969-12-31T23:59:58.500Z');
});

t.test('random instants: the shape is exact and the value parses back', async (t) => {
  const random = createRandom(0x3339);
  const shape = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{3}|\.\d{6}|\.\d{9})?Z$/;
  let bad = 0;
  for (let i = 0; i < 5000; i++) {
    const ms = random.int(4_102_444_800_000); // up to 2100
    const sub = random.int(4) === 0 ? 0 : random.int(1_000_000);
    const s = formatRfc3339(ms, sub);
    const ok = shape.test(s) && Date.parse(s) === ms && s.slice(0, 19) === new Date(ms).toISOString().slice(0, 19);
    const digits = s.length === 20 ? '' : s.slice(20, -1);
    const nanos = Number(digits.padEnd(9, '0') || '0');
    const want = (ms % 1000) * 1_000_000 + sub;
    const wantDigits = want === 0 ? 0 : want % 1_000_000 === 0 ? 3 : want % 1000 === 0 ? 6 : 9;
    if (!ok || nanos !== want || digits.length !== wantDigits) {
      bad++;
      if (bad < 5) t.fail(`formatRfc3339(${ms}, ${sub}) = ${s}`);
    }
  }
  t.equal(bad, 0, 'every random instant formats exactly');
});
