// prepareExec: how a `core.exec.request` becomes a spawn (PROTOCOL §5.1, DESIGN §4): the agent's
// environment then the request's entries in order (a later duplicate wins, the split is at the
// first `=`), an entry without `=` is a bad_args failure, HOME follows the user (or root) unless
// the request sets it, the scripts directory is prefixed to PATH once and only if it exists,
// unknown rlimit names are skipped, and the agent's default user and cwd fill the gaps.
import t from 'tap';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { SpawnError } from '../../ts/errors.js';
import { Agent } from '../../ts/agent/agent.js';
import { prepareExec, type ExecDefaults } from '../../ts/agent/exec-request.js';
import type { NormalizedOptions } from '../../ts/spawn-options.js';
import type { ExecRequest, ReceivedMessage } from '../../ts/protocol/index.js';
import { rawConnect } from '../fixtures/raw-client.js';

const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

const dir = mkdtempSync(join(tmpdir(), 'msb-exec-request-'));
const scripts = join(dir, 'scripts');
mkdirSync(scripts);
const noScripts = join(dir, 'no-such-scripts-dir');
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

function defaults(over: Partial<ExecDefaults> = {}): ExecDefaults {
  return { user: null, cwd: null, securityProfile: 'default', afterExit: 'detach', drainMs: 100, graceMs: 5000, scriptsDir: noScripts, ...over };
}

function request(over: Partial<ExecRequest> = {}): ExecRequest {
  return { cmd: 'true', args: [], env: [], cwd: null, user: null, tty: false, rows: 24, cols: 80, rlimits: [], ...over };
}

/** prepareExec that must succeed. */
function prepared(req: ExecRequest, d: ExecDefaults, env: NodeJS.ProcessEnv): NormalizedOptions {
  const r = prepareExec(req, d, env);
  if (r instanceof SpawnError) throw new Error(`unexpected SpawnError: ${r.message}`);
  return r;
}

/** The whole failure shape, or null when prepareExec succeeded. */
function failure(req: ExecRequest, d = defaults(), env: NodeJS.ProcessEnv = {}): Record<string, unknown> | null {
  let r: NormalizedOptions | SpawnError;
  try {
    r = prepareExec(req, d, env);
  } catch (err) {
    return { threw: (err as Error).message };
  }
  if (!(r instanceof SpawnError)) return null;
  return { kind: r.kind, stage: r.stage, errno: r.errno, errnoName: r.errnoName, spawnargs: r.spawnargs };
}

t.test('env: the agent environment first, then request entries in order; the last duplicate wins', async (t) => {
  const r = prepared(
    request({ env: ['B=3', 'C=4', 'B=5', 'D=x=y', 'E=', 'A=1'] }),
    defaults(),
    { A: '1', B: '2', Z: 'z' },
  );
  t.strictSame(r.native.env, ['A=1', 'B=5', 'Z=z', 'C=4', 'D=x=y', 'E=']);
});

t.test('env: only the given agent environment is used, never process.env behind it', async (t) => {
  process.env.MSB_TEST_LEAK = 'leak';
  t.teardown(() => delete process.env.MSB_TEST_LEAK);
  t.strictSame(prepared(request(), defaults(), {}).native.env, []);
  t.strictSame(prepared(request({ env: ['K=V'] }), defaults(), {}).native.env, ['K=V']);
});

t.test('env: an entry without "=" (or with an empty key) is a bad_args SpawnError', async (t) => {
  const want = { kind: 'bad_args', stage: 'resolve', errno: null, errnoName: null, spawnargs: ['true', 'a'] };
  t.strictSame(failure(request({ args: ['a'], env: ['NOEQUALS'] })), want);
  t.strictSame(failure(request({ args: ['a'], env: ['A=1', 'NOEQUALS', 'B=2'] })), want, 'wherever it is in the list');
  t.strictSame(failure(request({ args: ['a'], env: ['=value'] })), want);
  t.strictSame(failure(request({ args: ['a'], env: [''] })), want);
  t.strictSame(failure(request({ args: ['a'], env: ['A=b\0c'] }))?.kind, 'bad_args', 'a NUL byte');
});

t.test('HOME: dropped from the agent environment unless the request sets it; the native side fills it from the user or root', async (t) => {
  const agentEnv = { HOME: '/home/agent', X: '1' };
  const plain = prepared(request(), defaults(), agentEnv);
  t.strictSame(plain.native.env, ['X=1'], 'the agent HOME is not inherited');
  t.equal(plain.native.homeDefault, 'user-or-root');
  t.strictSame(prepared(request({ env: ['HOME=/custom'] }), defaults(), agentEnv).native.env, ['HOME=/custom', 'X=1'], 'the request HOME replaces the agent one in place');
  t.strictSame(prepared(request({ env: ['HOME=/a', 'HOME=/b'] }), defaults(), {}).native.env, ['HOME=/b'], 'the last HOME wins');
  t.strictSame(prepared(request({ env: ['HOME='] }), defaults(), agentEnv).native.env, ['HOME=', 'X=1'], 'an empty HOME is still set by the request');
});

t.test('PATH: the scripts directory is prefixed when it exists, exactly once', async (t) => {
  const d = defaults({ scriptsDir: scripts });
  const pathOf = (r: NormalizedOptions): string | undefined => r.native.env.find((e) => e.startsWith('PATH='))?.slice(5);
  t.equal(pathOf(prepared(request(), d, { PATH: '/usr/bin:/bin' })), `${scripts}:/usr/bin:/bin`, 'the agent PATH');
  t.equal(pathOf(prepared(request({ env: ['PATH=/opt/bin'] }), d, { PATH: '/usr/bin' })), `${scripts}:/opt/bin`, 'the request PATH');
  t.equal(pathOf(prepared(request({ env: ['PATH=/x', 'PATH=/y'] }), d, {})), `${scripts}:/y`, 'the final PATH of duplicates');
  t.equal(pathOf(prepared(request(), d, { PATH: `${scripts}:/usr/bin` })), `${scripts}:/usr/bin`, 'already first: not added twice');
  t.equal(pathOf(prepared(request({ env: [`PATH=/a:${scripts}:/b`] }), d, {})), `/a:${scripts}:/b`, 'already a segment: left alone');
  t.equal(pathOf(prepared(request(), d, {})), `${scripts}:${DEFAULT_PATH}`, 'no PATH anywhere: the default guest PATH');
  t.strictSame(
    prepared(request(), d, { A: '1', PATH: '/usr/bin', B: '2' }).native.env,
    ['A=1', `PATH=${scripts}:/usr/bin`, 'B=2'],
    'PATH keeps its place',
  );
  t.equal(pathOf(prepared(request(), d, { PATH: `${scripts}/sub:/usr/bin` })), `${scripts}:${scripts}/sub:/usr/bin`, 'a longer path that merely starts with the directory is not the directory');
});

t.test('PATH: untouched when the scripts directory does not exist', async (t) => {
  t.strictSame(prepared(request(), defaults(), { PATH: '/usr/bin' }).native.env, ['PATH=/usr/bin']);
  t.strictSame(prepared(request({ env: ['PATH=/opt'] }), defaults(), {}).native.env, ['PATH=/opt']);
  t.strictSame(prepared(request(), defaults(), {}).native.env, [], 'no PATH is invented');
});

t.test('rlimits: known names in any case, RLIMIT_ prefix allowed, unknown names skipped', async (t) => {
  const r = prepared(
    request({
      rlimits: [
        { resource: 'nofile', soft: 10, hard: 20 },
        { resource: 'bogus', soft: 1, hard: 1 },
        { resource: 'RLIMIT_CPU', soft: 5, hard: 6 },
        { resource: '', soft: 1, hard: 1 },
        { resource: 'NPROC', soft: 7, hard: 8 },
        { resource: 'as', soft: 0xffff_ffff_ffff_ffffn, hard: 0xffff_ffff_ffff_ffffn },
      ],
    }),
    defaults(),
    {},
  );
  t.strictSame(r.native.rlimits, [
    { resource: 7, soft: 10n, hard: 20n },
    { resource: 0, soft: 5n, hard: 6n },
    { resource: 6, soft: 7n, hard: 8n },
    { resource: 9, soft: 0xffff_ffff_ffff_ffffn, hard: 0xffff_ffff_ffff_ffffn },
  ]);
  t.strictSame(prepared(request({ rlimits: [{ resource: 'nope', soft: 1, hard: 1 }] }), defaults(), {}).native.rlimits, []);
});

t.test('user and cwd: the request wins; blank or absent falls back to the agent defaults', async (t) => {
  const d = defaults({ user: 'nobody', cwd: '/tmp' });
  const pick = (req: Partial<ExecRequest>, dd = d): [string | null, string | null] => {
    const r = prepared(request(req), dd, {});
    return [r.native.user, r.native.cwd];
  };
  t.strictSame(pick({}), ['nobody', '/tmp']);
  t.strictSame(pick({ user: '' }), ['nobody', '/tmp'], 'empty user → default');
  t.strictSame(pick({ user: '   \t' }), ['nobody', '/tmp'], 'blank user → default');
  t.strictSame(pick({ user: 'root', cwd: '/var' }), ['root', '/var']);
  t.strictSame(pick({ user: '0:0' }), ['0:0', '/tmp']);
  t.strictSame(pick({ user: '  ' }, defaults()), [null, null], 'no default: no user switch, inherited cwd');
  t.strictSame(pick({}, defaults()), [null, null]);
});

t.test('the rest of the request and the agent settings reach the native options', async (t) => {
  const r = prepared(
    request({ cmd: 'sh', args: ['-c', 'x'], tty: true, rows: 30, cols: 100 }),
    defaults({ securityProfile: 'restricted', afterExit: 'kill-group', drainMs: 250, graceMs: 750 }),
    {},
  );
  t.match(r.native, {
    file: 'sh',
    args: ['-c', 'x'],
    mode: 'pty',
    rows: 30,
    cols: 100,
    stdin: 'pipe',
    restricted: true,
    homeDefault: 'user-or-root',
    drainMs: 250,
    afterDrain: 'kill-group',
  });
  t.strictSame(r.spawnargs, ['sh', '-c', 'x']);
  t.equal(r.killGraceMs, 750);
  t.equal(r.timeoutMs, null);
  t.equal(r.signal, null);
  t.equal(prepared(request(), defaults(), {}).native.mode, 'pipes');
});

t.test('odd requests the wire can carry become a bad_args SpawnError, never a throw', async (t) => {
  for (const [what, req] of [
    ['empty cmd', request({ cmd: '' })],
    ['rows 0', request({ rows: 0 })],
    ['cols 0', request({ cols: 0, tty: true })],
    ['NUL in an argument', request({ args: ['a\0b'] })],
    ['NUL in cwd', request({ cwd: '/tmp\0x' })],
    ['NUL in user', request({ user: 'ro\0ot' })],
  ] as const) {
    t.equal(failure(req)?.kind, 'bad_args', what);
  }
});

t.test('end to end: the child sees the merged environment, HOME from root or the user', async (t) => {
  const sock = join(dir, 'agent.sock');
  const agent = new Agent({ graceMs: 200, heartbeatFile: null });
  await agent.listen({ kind: 'socket', address: { kind: 'unix', path: sock } });
  const client = await rawConnect(sock);
  const savedHome = process.env.HOME;
  process.env.HOME = '/tmp/agent-own-home';
  t.teardown(async () => {
    process.env.HOME = savedHome;
    client.close();
    await agent.close();
  });
  let id = client.idStart;
  const run = async (req: Partial<ExecRequest>): Promise<{ out: string; exit: unknown }> => {
    const myId = id++;
    client.send(myId, { type: 'execRequest', payload: request({ cmd: 'sh', args: ['-c', 'printf "%s|%s|%s|%s" "$HOME" "$B" "$C" "$(id -u)"'], ...req }) });
    const ms: ReceivedMessage[] = await client.untilTerminal(myId);
    const out = Buffer.concat(ms.filter((m) => m.type === 'execStdout').map((m) => (m.payload as { data: Buffer }).data)).toString();
    return { out, exit: ms.at(-1)!.payload };
  };
  t.strictSame(await run({ env: ['B=1', 'C=2', 'B=3'] }), { out: '/root|3|2|0', exit: { code: 0, signal: null } }, 'root home, not the agent HOME');
  t.strictSame(await run({ env: ['HOME=/custom'] }), { out: '/custom|||0', exit: { code: 0, signal: null } });
  t.strictSame(await run({ user: 'nobody', cwd: '/' }), { out: '/nonexistent|||65534', exit: { code: 0, signal: null } }, "the user's home");
});
