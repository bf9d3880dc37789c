// spawnSession() options: validation (TypeError/RangeError with code MSB_ERR_INVALID_OPTION,
// before any process starts), the environment merge, and stdin 'pipe' | 'ignore'.
import t, { type Test } from 'tap';

import { run, spawnSession, type SpawnSessionOptions } from '../ts/index.js';
import { collect } from './fixtures/harness.js';


/** Calls `fn` and returns what it threw synchronously or rejected with (or null). */
async function failure(fn: () => unknown): Promise<unknown> {
  try {
    await fn();
  } catch (e) {
    return e;
  }
  return null;
}

async function assertInvalid(t: Test, fn: () => unknown, name: 'TypeError' | 'RangeError', what: string): Promise<void> {
  const err = await failure(fn);
  t.ok(err instanceof (name === 'TypeError' ? TypeError : RangeError), `${what}: ${name} (${String(err)})`);
  t.equal((err as { code?: unknown } | null)?.code, 'MSB_ERR_INVALID_OPTION', `${what}: code`);
}

const INVALID: [string, unknown, 'TypeError' | 'RangeError'][] = [
  ['cmd missing', {}, 'TypeError'],
  ['cmd empty', { cmd: '' }, 'TypeError'],
  ['cmd not a string', { cmd: 42 }, 'TypeError'],
  ['args not strings', { cmd: 'true', args: ['ok', 1] }, 'TypeError'],
  ['args not an array', { cmd: 'true', args: 'a b' }, 'TypeError'],
  ['rows 0', { cmd: 'true', rows: 0 }, 'RangeError'],
  ['rows 70000', { cmd: 'true', rows: 70000 }, 'RangeError'],
  ['rows 1.5', { cmd: 'true', rows: 1.5 }, 'TypeError'],
  ['cols 0', { cmd: 'true', cols: 0 }, 'RangeError'],
  ["stdin 'bogus'", { cmd: 'true', stdin: 'bogus' }, 'TypeError'],
  ["afterExit 'bogus'", { cmd: 'true', afterExit: 'bogus' }, 'TypeError'],
  ["securityProfile 'bogus'", { cmd: 'true', securityProfile: 'bogus' }, 'TypeError'],
  ["env entry 'NOEQUALS'", { cmd: 'true', env: ['NOEQUALS'] }, 'TypeError'],
  ["env entry '=V' (empty name)", { cmd: 'true', env: ['=V'] }, 'TypeError'],
  ['env value not a string', { cmd: 'true', env: { K: 5 } }, 'TypeError'],
  ['timeoutMs -1', { cmd: 'true', timeoutMs: -1 }, 'RangeError'],
  ['killGraceMs -1', { cmd: 'true', killGraceMs: -1 }, 'RangeError'],
  ['drainMs not a number', { cmd: 'true', drainMs: '100' }, 'TypeError'],
  ['tty not a boolean', { cmd: 'true', tty: 'yes' }, 'TypeError'],
  ['signal not an AbortSignal', { cmd: 'true', signal: {} }, 'TypeError'],
  ['cwd not a string', { cmd: 'true', cwd: 1 }, 'TypeError'],
  ['user not a string', { cmd: 'true', user: 65534 }, 'TypeError'],
  ['unknown rlimit', { cmd: 'true', rlimits: [{ resource: 'bogus', soft: 1, hard: 1 }] }, 'RangeError'],
];

t.test('invalid options are TypeError/RangeError with code MSB_ERR_INVALID_OPTION', async (t) => {
  for (const [what, opts, name] of INVALID) {
    await assertInvalid(t, () => spawnSession(opts as SpawnSessionOptions), name, what);
  }
});

t.test('run() rejects the same invalid options, and a bad maxBuffer', async (t) => {
  for (const [what, opts, name] of INVALID) {
    await assertInvalid(t, () => run(opts as SpawnSessionOptions), name, `run: ${what}`);
  }
  await assertInvalid(t, () => run({ cmd: 'true', maxBuffer: 1 }), 'RangeError', 'run: maxBuffer 1');
});

t.test('kill() with an unknown signal name is a TypeError with code MSB_ERR_INVALID_OPTION', async (t) => {
  const s = await spawnSession({ cmd: 'sleep', args: ['60'] });
  t.teardown(() => s.close());
  await assertInvalid(t, () => s.kill('SIGBOGUS' as NodeJS.Signals), 'TypeError', 'kill(SIGBOGUS)');
  s.close();
  t.strictSame(await s.exited, { code: null, signal: 'SIGKILL', reason: 'killed' });
});

/** Runs `env -0` and returns the child's environment as a Map, in the child's order. */
async function childEnv(opts: Omit<SpawnSessionOptions, 'cmd' | 'args'>): Promise<Map<string, string>> {
  const s = await spawnSession({ ...opts, cmd: 'env', args: ['-0'] });
  const r = await collect(s);
  if (r.exit.code !== 0) throw new Error(`env exited ${JSON.stringify(r.exit)}`);
  const text = r.stdout.toString('utf8');
  const env = new Map<string, string>();
  for (const entry of text.split('\0').slice(0, -1)) {
    const eq = entry.indexOf('=');
    env.set(entry.slice(0, eq), entry.slice(eq + 1));
  }
  return env;
}

const sorted = (m: Map<string, string> | Record<string, string>): [string, string][] =>
  (m instanceof Map ? [...m] : Object.entries(m)).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));

function inherited(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
  return env;
}

t.test('inheritEnv false gives exactly the given env (record and K=V forms)', async (t) => {
  t.strictSame(
    sorted(await childEnv({ inheritEnv: false, env: { E_A: '1', E_B: 'x y=z', E_EMPTY: '' } })),
    [['E_A', '1'], ['E_B', 'x y=z'], ['E_EMPTY', '']],
  );
  t.strictSame(sorted(await childEnv({ inheritEnv: false, env: ['E_A=1', 'E_B=x=y', 'E_A=2', 'E_EMPTY='] })), [
    ['E_A', '2'],
    ['E_B', 'x=y'],
    ['E_EMPTY', ''],
  ]);
  t.strictSame(sorted(await childEnv({ inheritEnv: false })), [], 'no env at all');
});

t.test('by default the child inherits process.env exactly', async (t) => {
  t.strictSame(sorted(await childEnv({})), sorted(inherited()));
});

t.test('record overrides win over inherited values', async (t) => {
  const expected = { ...inherited(), E_NEW: 'new', PATH: '/usr/bin:/bin', LANG: 'e-override' };
  t.strictSame(sorted(await childEnv({ env: { E_NEW: 'new', PATH: '/usr/bin:/bin', LANG: 'e-override' } })), sorted(expected));
});

t.test('a null or undefined value removes an inherited key', async (t) => {
  const saved = { E_GONE: process.env.E_GONE, E_ALSO_GONE: process.env.E_ALSO_GONE };
  t.teardown(() => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });
  process.env.E_GONE = 'inherited';
  process.env.E_ALSO_GONE = 'inherited';
  const env = await childEnv({ env: { E_GONE: null, E_ALSO_GONE: undefined, E_KEPT: 'k' } });
  t.equal(env.has('E_GONE'), false, 'null removes');
  t.equal(env.has('E_ALSO_GONE'), false, 'undefined removes');
  t.equal(env.get('E_KEPT'), 'k');
  const expected = inherited();
  delete expected.E_GONE;
  delete expected.E_ALSO_GONE;
  expected.E_KEPT = 'k';
  t.strictSame(sorted(env), sorted(expected));
});

t.test("'K=V' strings override inherited values, the last one winning", async (t) => {
  const expected = { ...inherited(), E_K: 'second', LANG: 'e=override' };
  t.strictSame(sorted(await childEnv({ env: ['E_K=first', 'LANG=e=override', 'E_K=second'] })), sorted(expected));
});

t.test('the environment is the same in tty mode', async (t) => {
  t.strictSame(sorted(await childEnv({ inheritEnv: false, env: { E_A: '1' }, tty: true })), [['E_A', '1']]);
});

t.test("stdin 'ignore' is /dev/null; the default is a pipe (as child_process)", async (t) => {
  const link = async (opts: Omit<SpawnSessionOptions, 'cmd' | 'args'>): Promise<string> => {
    const s = await spawnSession({ ...opts, cmd: 'readlink', args: ['/proc/self/fd/0'] });
    return (await collect(s)).stdout.toString('latin1');
  };
  t.equal(await link({ stdin: 'ignore' }), '/dev/null\n');
  t.match(await link({}), /^pipe:\[\d+\]\n$/);
  t.match(await link({ stdin: 'pipe' }), /^pipe:\[\d+\]\n$/);
});

t.test("stdin 'ignore': a reader sees EOF at once without the caller ending stdin", async (t) => {
  const s = await spawnSession({ cmd: 'cat', stdin: 'ignore' });
  const r = await collect(s);
  t.strictSame(r.exit, { code: 0, signal: null, reason: 'exited' });
  t.equal(r.stdout.length, 0);
});

t.test('stdin pipe: bytes written arrive exactly, end() is EOF', async (t) => {
  const s = await spawnSession({ cmd: 'cat' });
  const input = Buffer.from('line one\nline two\0\xff', 'latin1');
  s.stdin.end(input);
  const r = await collect(s);
  t.strictSame(r.exit, { code: 0, signal: null, reason: 'exited' });
  t.ok(r.stdout.equals(input), 'byte-exact');
});
