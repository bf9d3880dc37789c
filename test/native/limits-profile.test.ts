// rlimits and the security profile are applied in the child before execve, and are visible to
// the child itself in /proc/self/limits and /proc/self/status. The restricted profile sets
// no_new_privs and drops CAP_SYS_ADMIN from the effective and bounding sets, leaving the rest; the
// default profile changes nothing (the test runs as root, so CAP_SYS_ADMIN is there to keep).
import t from 'tap';
import { readFileSync } from 'node:fs';

import { spawnSession, type SpawnSessionOptions } from '../../ts/index.js';
import { collect } from '../fixtures/harness.js';

const CAP_SYS_ADMIN = 21n;

/** Reads a file in the child (`cat`) and returns its text, failing on a non-zero exit. */
async function childRead(path: string, opts: Omit<SpawnSessionOptions, 'cmd' | 'args'> = {}): Promise<string> {
  const s = await spawnSession({ ...opts, cmd: 'cat', args: [path] });
  const r = await collect(s);
  if (r.exit.code !== 0) throw new Error(`cat ${path}: ${JSON.stringify(r.exit)} ${r.stderr.toString()}`);
  return r.stdout.toString('utf8').replace(/\r\n/g, '\n');
}

/** `{ soft, hard }` of a /proc/<pid>/limits row, by its label ("Max open files"). */
function limitRow(limits: string, label: string): { soft: string; hard: string } {
  const line = limits.split('\n').find((l) => l.startsWith(label));
  if (!line) throw new Error(`no "${label}" row in:\n${limits}`);
  const [soft, hard] = line.slice(label.length).trim().split(/\s+/);
  return { soft, hard };
}

/** The value of a `Key:\tvalue` line of /proc/<pid>/status. */
function statusField(status: string, key: string): string {
  const line = status.split('\n').find((l) => l.startsWith(`${key}:`));
  if (!line) throw new Error(`no ${key} in status`);
  return line.slice(key.length + 1).trim();
}

const capMask = (status: string, key: string): bigint => BigInt(`0x${statusField(status, key)}`);
const hasCap = (mask: bigint, cap: bigint): boolean => ((mask >> cap) & 1n) === 1n;

const ownStatus = readFileSync('/proc/self/status', 'utf8');
const ownEff = capMask(ownStatus, 'CapEff');
const ownBnd = capMask(ownStatus, 'CapBnd');

t.test('rlimits are visible in the child /proc/self/limits (nofile 123/456, core 0/0)', async (t) => {
  for (const tty of [false, true]) {
    const limits = await childRead('/proc/self/limits', {
      tty,
      rlimits: [
        { resource: 'nofile', soft: 123, hard: 456 },
        { resource: 'core', soft: 0, hard: 0 },
      ],
    });
    t.strictSame(limitRow(limits, 'Max open files'), { soft: '123', hard: '456' }, `tty=${tty}: nofile`);
    t.strictSame(limitRow(limits, 'Max core file size'), { soft: '0', hard: '0' }, `tty=${tty}: core`);
  }
});

t.test('rlimit names are case-insensitive and accept the RLIMIT_ prefix', async (t) => {
  for (const [resource, label] of [
    ['NOFILE', 'Max open files'],
    ['RLIMIT_NOFILE', 'Max open files'],
    ['rlimit_Core', 'Max core file size'],
    ['Cpu', 'Max cpu time'],
  ] as const) {
    const limits = await childRead('/proc/self/limits', { rlimits: [{ resource, soft: 77, hard: 99 }] });
    t.strictSame(limitRow(limits, label), { soft: '77', hard: '99' }, resource);
  }
});

t.test('bigint and Infinity limits reach the child', async (t) => {
  const limits = await childRead('/proc/self/limits', {
    rlimits: [
      { resource: 'cpu', soft: 100n, hard: 200n },
      { resource: 'fsize', soft: 1n << 40n, hard: Infinity },
    ],
  });
  t.strictSame(limitRow(limits, 'Max cpu time'), { soft: '100', hard: '200' });
  t.strictSame(limitRow(limits, 'Max file size'), { soft: String(1n << 40n), hard: 'unlimited' });
});

t.test('an unknown rlimit name is a RangeError with code MSB_ERR_INVALID_OPTION', async (t) => {
  for (const resource of ['e-bogus', 'nofiles', '']) {
    await t.rejects(
      (async () => spawnSession({ cmd: 'true', rlimits: [{ resource, soft: 1, hard: 1 }] }))(),
      { name: 'RangeError', code: 'MSB_ERR_INVALID_OPTION' },
      JSON.stringify(resource),
    );
  }
});

t.test('a negative, fractional or too large limit is rejected with code MSB_ERR_INVALID_OPTION', async (t) => {
  for (const [soft, name] of [
    [-1, 'TypeError'],
    [1.5, 'TypeError'],
    [-1n, 'RangeError'],
    [1n << 64n, 'RangeError'],
  ] as const) {
    await t.rejects(
      (async () => spawnSession({ cmd: 'true', rlimits: [{ resource: 'nofile', soft, hard: 10 }] }))(),
      { name, code: 'MSB_ERR_INVALID_OPTION' },
      String(soft),
    );
  }
});

t.test("securityProfile 'restricted' sets no_new_privs and drops only CAP_SYS_ADMIN", async (t) => {
  t.ok(hasCap(ownEff, CAP_SYS_ADMIN), 'the test process (root) holds CAP_SYS_ADMIN');
  for (const tty of [false, true]) {
    const status = await childRead('/proc/self/status', { securityProfile: 'restricted', tty });
    t.equal(statusField(status, 'NoNewPrivs'), '1', `tty=${tty}: NoNewPrivs`);
    const eff = capMask(status, 'CapEff');
    const bnd = capMask(status, 'CapBnd');
    t.notOk(hasCap(eff, CAP_SYS_ADMIN), `tty=${tty}: CAP_SYS_ADMIN not effective`);
    t.notOk(hasCap(bnd, CAP_SYS_ADMIN), `tty=${tty}: CAP_SYS_ADMIN not in the bounding set`);
    // Every other capability remains: the masks are ours with exactly bit 21 cleared.
    t.equal(eff.toString(16), (ownEff & ~(1n << CAP_SYS_ADMIN)).toString(16), `tty=${tty}: CapEff`);
    t.equal(bnd.toString(16), (ownBnd & ~(1n << CAP_SYS_ADMIN)).toString(16), `tty=${tty}: CapBnd`);
  }
});

t.test('the default profile keeps CAP_SYS_ADMIN and does not set no_new_privs', async (t) => {
  for (const opts of [{}, { securityProfile: 'default' as const }, { securityProfile: 'default' as const, tty: true }]) {
    const status = await childRead('/proc/self/status', opts);
    t.equal(statusField(status, 'NoNewPrivs'), statusField(ownStatus, 'NoNewPrivs'), `${JSON.stringify(opts)}: NoNewPrivs`);
    t.equal(capMask(status, 'CapEff').toString(16), ownEff.toString(16), `${JSON.stringify(opts)}: CapEff`);
    t.equal(capMask(status, 'CapBnd').toString(16), ownBnd.toString(16), `${JSON.stringify(opts)}: CapBnd`);
  }
});

t.test('an unknown securityProfile is a TypeError with code MSB_ERR_INVALID_OPTION', async (t) => {
  await t.rejects(
    (async () => spawnSession({ cmd: 'true', securityProfile: 'e-bogus' as 'default' }))(),
    { name: 'TypeError', code: 'MSB_ERR_INVALID_OPTION' },
  );
});
