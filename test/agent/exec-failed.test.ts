// toExecFailed / fromExecFailed: the one mapping between a SpawnError and the wire's
// `core.exec.failed` (PROTOCOL §5.5), both directions. Kinds pass through (anything the protocol
// does not list becomes `other`), errno stays positive, errno_name and stage pass through, and the
// message reads `spawn "<cmd>": ... <strerror> (os error <n>)` for errno failures and
// `exec session error: ...` otherwise.
import t from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { EXEC_FAILURE_KINDS, SpawnError, type ExecFailureKind } from '../../ts/errors.js';
import { spawnSession } from '../../ts/index.js';
import { fromExecFailed, toExecFailed } from '../../ts/agent/exec-failed.js';
import { decodeMessage, encodeMessage, FrameDecoder, type ExecFailed } from '../../ts/protocol/index.js';

// strerror(3) as glibc (and Rust's io::Error Display, which upstream prints) words it.
const STRERROR: Record<number, string> = {
  1: 'Operation not permitted',
  2: 'No such file or directory',
  7: 'Argument list too long',
  8: 'Exec format error',
  11: 'Resource temporarily unavailable',
  12: 'Cannot allocate memory',
  13: 'Permission denied',
  20: 'Not a directory',
  21: 'Is a directory',
  24: 'Too many open files',
  26: 'Text file busy',
  40: 'Too many levels of symbolic links',
};
const NAME: Record<number, string> = {
  1: 'EPERM',
  2: 'ENOENT',
  7: 'E2BIG',
  8: 'ENOEXEC',
  11: 'EAGAIN',
  12: 'ENOMEM',
  13: 'EACCES',
  20: 'ENOTDIR',
  21: 'EISDIR',
  24: 'EMFILE',
  26: 'ETXTBSY',
  40: 'ELOOP',
};

function spawnError(fields: Partial<ConstructorParameters<typeof SpawnError>[1]> & { kind: ExecFailureKind }, program = 'prog'): SpawnError {
  return new SpawnError(program, {
    stage: 'execve',
    errno: null,
    errnoName: null,
    path: null,
    spawnargs: [program, 'arg'],
    ...fields,
  });
}

/** The payload survives the wire: encode as core.exec.failed and decode it back. */
function overTheWire(f: ExecFailed): unknown {
  const d = new FrameDecoder();
  d.push(encodeMessage(9, { type: 'execFailed', payload: f }));
  const r = decodeMessage(d.readFrame()!);
  if (!r.ok) throw r.rejection.error;
  return r.message.payload;
}

t.test('toExecFailed: every protocol kind passes through; an unknown kind becomes other', async (t) => {
  for (const kind of EXEC_FAILURE_KINDS) {
    const f = toExecFailed(spawnError({ kind }));
    t.equal(f.kind, kind, kind);
    t.strictSame(overTheWire(f), f, `${kind} encodes and decodes unchanged`);
  }
  const odd = toExecFailed(spawnError({ kind: 'exotic_failure' as ExecFailureKind }));
  t.equal(odd.kind, 'other');
  t.strictSame(overTheWire(odd), odd, 'an older peer can decode it');
});

t.test('toExecFailed: errno failures keep errno positive, the name and the stage; the message ends in strerror (os error n)', async (t) => {
  for (const [errnoText, text] of Object.entries(STRERROR)) {
    const errno = Number(errnoText);
    const f = toExecFailed(
      spawnError({ kind: 'other', errno, errnoName: NAME[errno]!, stage: 'execve', path: '/usr/bin/prog' }, '/usr/bin/prog'),
    );
    t.equal(f.errno, errno, `${NAME[errno]}: errno is positive and unchanged`);
    t.equal(f.errnoName, NAME[errno]);
    t.equal(f.stage, 'execve');
    t.ok(f.message.startsWith('spawn "/usr/bin/prog": '), `${NAME[errno]}: ${f.message}`);
    t.ok(f.message.endsWith(`: ${text} (os error ${errno})`), `${NAME[errno]}: "${f.message}" ends with "${text} (os error ${errno})"`);
  }
});

t.test('toExecFailed: the program is quoted like a Rust Debug string', async (t) => {
  const f = toExecFailed(spawnError({ kind: 'not_found', errno: 2, errnoName: 'ENOENT', stage: 'resolve' }, 'my "tool"\\x'));
  t.ok(f.message.startsWith('spawn "my \\"tool\\"\\\\x": '), f.message);
  t.ok(f.message.endsWith('No such file or directory (os error 2)'));
});

t.test('toExecFailed: failures without errno read "exec session error: ..." and keep errno fields null', async (t) => {
  const f = toExecFailed(
    spawnError({ kind: 'user_setup_failed', stage: 'user', detail: 'guest user not found: alice' }),
  );
  t.strictSame({ ...f, message: undefined }, { kind: 'user_setup_failed', errno: null, errnoName: null, message: undefined, stage: 'user' });
  t.ok(f.message.startsWith('exec session error: '), f.message);
  t.ok(f.message.includes('guest user not found: alice'), 'the reason is in the message');
  t.notOk(f.message.includes('os error'));
});

t.test('toExecFailed on real spawn failures', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'msb-failed-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const notExecutable = join(dir, 'plain.txt');
  writeFileSync(notExecutable, 'echo hi\n', { mode: 0o644 });
  const garbage = join(dir, 'garbage');
  writeFileSync(garbage, Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0, 0, 0, 0]), { mode: 0o755 });
  const cases: [Parameters<typeof spawnSession>[0], Omit<ExecFailed, 'message'>, string][] = [
    [{ cmd: 'no-such-program-xyz' }, { kind: 'not_found', errno: 2, errnoName: 'ENOENT', stage: 'resolve' }, 'No such file or directory (os error 2)'],
    [{ cmd: notExecutable }, { kind: 'permission_denied', errno: 13, errnoName: 'EACCES', stage: 'execve' }, 'Permission denied (os error 13)'],
    [{ cmd: garbage }, { kind: 'not_executable', errno: 8, errnoName: 'ENOEXEC', stage: 'execve' }, 'Exec format error (os error 8)'],
    [{ cmd: 'true', cwd: notExecutable }, { kind: 'bad_cwd', errno: 20, errnoName: 'ENOTDIR', stage: 'chdir' }, 'Not a directory (os error 20)'],
  ];
  for (const [opts, want, tail] of cases) {
    let err: unknown = null;
    try {
      const s = await spawnSession(opts);
      await s.exited;
    } catch (e) {
      err = e;
    }
    if (!(err instanceof SpawnError)) {
      t.fail(`${opts.cmd}: expected a SpawnError`);
      continue;
    }
    const { message, ...fields } = toExecFailed(err);
    t.strictSame(fields, want, `${opts.cmd} ${opts.cwd ?? ''}`);
    t.ok(message.startsWith(`spawn ${JSON.stringify(opts.cmd)}: `), message);
    t.ok(message.endsWith(tail), `"${message}" ends with "${tail}"`);
  }
});

t.test('fromExecFailed: a received core.exec.failed becomes the same SpawnError fields', async (t) => {
  const e = fromExecFailed('prog', ['prog', 'a'], {
    kind: 'not_found',
    errno: 2,
    errnoName: 'ENOENT',
    message: 'spawn "prog": No such file or directory (os error 2)',
    stage: 'execvp',
  });
  t.type(e, SpawnError);
  t.strictSame(
    { kind: e.kind, errno: e.errno, errnoName: e.errnoName, stage: e.stage, path: e.path, spawnargs: e.spawnargs, code: e.code },
    { kind: 'not_found', errno: 2, errnoName: 'ENOENT', stage: 'execvp', path: null, spawnargs: ['prog', 'a'], code: 'ENOENT' },
  );
  t.equal(e.message, 'spawn "prog": No such file or directory (os error 2)', 'the agent\'s own message is kept');
});

t.test('fromExecFailed: unknown kind → other, missing stage → unknown, the peer message kept when there is no errno', async (t) => {
  const e = fromExecFailed('prog', ['prog'], {
    kind: 'brand_new_kind' as ExecFailureKind,
    errno: null,
    errnoName: null,
    message: 'exec session error: guest user not found: alice',
    stage: null,
  });
  t.strictSame(
    { kind: e.kind, errno: e.errno, errnoName: e.errnoName, stage: e.stage, path: e.path, code: e.code },
    { kind: 'other', errno: null, errnoName: null, stage: 'unknown', path: null, code: 'MSB_ERR_SPAWN' },
  );
  t.ok(e.message.includes('guest user not found: alice'), e.message);
});

t.test('both directions: kind, errno, errnoName and stage survive SpawnError → wire → SpawnError', async (t) => {
  const cases: [ExecFailureKind, number | null, string | null, string][] = [
    ['not_found', 2, 'ENOENT', 'resolve'],
    ['permission_denied', 13, 'EACCES', 'execve'],
    ['not_executable', 8, 'ENOEXEC', 'execve'],
    ['bad_cwd', 20, 'ENOTDIR', 'chdir'],
    ['bad_args', null, null, 'resolve'],
    ['resource_limit', 24, 'EMFILE', 'pipe'],
    ['user_setup_failed', null, null, 'user'],
    ['out_of_memory', 12, 'ENOMEM', 'clone'],
    ['pty_setup_failed', 5, 'EIO', 'openpty'],
    ['other', 22, 'EINVAL', 'setrlimit'],
  ];
  for (const [kind, errno, errnoName, stage] of cases) {
    const original = spawnError({ kind, errno, errnoName, stage, detail: errno === null ? 'why' : null });
    const wire = overTheWire(toExecFailed(original)) as ExecFailed;
    const back = fromExecFailed('prog', ['prog', 'arg'], wire);
    t.strictSame(
      { kind: back.kind, errno: back.errno, errnoName: back.errnoName, stage: back.stage, code: back.code },
      { kind, errno, errnoName, stage, code: errnoName ?? 'MSB_ERR_SPAWN' },
      kind,
    );
  }
});
