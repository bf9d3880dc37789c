// Spawn failures are typed, fast and leak nothing (LESSONS §8, regression 8).
//
// Upstream tools reported a missing cwd as `spawn <program> ENOENT` (nodejs/node#45279), a failed
// exec as a bare exit 255 (superradcompany/microsandbox#514), a missing command as -1 with empty
// output (daytonaio/daytona#2283), or hung for a minute (kata-containers#8026). Each case here must
// reject with a SpawnError whose whole shape is exact, within 1 s, in PTY and pipe mode alike, and
// leave this process with exactly the descriptors it had before.
import t, { type Test } from 'tap';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { spawnSession, SpawnError, type SpawnSessionOptions } from '../../ts/index.js';
import { collect, eventually, fdCount, spawnErrorShape, zombieChildren, type SpawnErrorShape } from '../fixtures/harness.js';
import { envBlock, native, nativeStats, toNativeEvents } from '../../ts/native/index.js';
import { pipeSpawn } from '../fixtures/native-options.js';

const dir = mkdtempSync(join(tmpdir(), 'e-spawn-errors-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

/** `./tool`: a valid script, but without the execute bit. */
writeFileSync(join(dir, 'tool'), '#!/bin/sh\necho tool\n', { mode: 0o644 });
chmodSync(join(dir, 'tool'), 0o644);
/** The same script with the execute bit, as a positive control for cwd-relative `./` names. */
writeFileSync(join(dir, 'runnable'), '#!/bin/sh\necho runnable\n');
chmodSync(join(dir, 'runnable'), 0o755);
/** Starts like an ELF file but is not one: the kernel answers ENOEXEC. */
writeFileSync(join(dir, 'bad-elf'), Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0x02, 0x01, 0x01, 0, 0xde, 0xad, 0xbe, 0xef]));
chmodSync(join(dir, 'bad-elf'), 0o755);
/** A script whose interpreter does not exist: execve gives ENOENT for a file that does. */
writeFileSync(join(dir, 'script'), '#!/nonexistent/e-interpreter\necho never\n');
chmodSync(join(dir, 'script'), 0o755);

const MODES = [false, true] as const;
const modeName = (tty: boolean): string => (tty ? 'tty' : 'pipes');

/**
 * Asserts the whole error shape, the 1 s bound, an unchanged fd count and no zombie child.
 * Returns the SpawnError for message checks.
 */
async function expectSpawnError(
  t: Test,
  opts: SpawnSessionOptions,
  expected: SpawnErrorShape,
): Promise<SpawnError> {
  // A lingering reader thread (from an earlier successful spawn) would close its two fds mid-case.
  await eventually(() => !nativeStats().readerRunning, 3000);
  const before = fdCount();
  const started = performance.now();
  let caught: unknown = null;
  const shape = await spawnErrorShape(
    spawnSession(opts).catch((e: unknown) => {
      caught = e;
      throw e;
    }),
  );
  const elapsed = performance.now() - started;
  t.strictSame(shape, expected, 'whole SpawnError shape');
  t.ok(elapsed < 1000, `failed in ${elapsed.toFixed(1)} ms (< 1000 ms)`);
  t.equal(fdCount(), before, 'fd count unchanged');
  t.strictSame(zombieChildren(), [], 'no zombie child left');
  t.ok(caught instanceof SpawnError);
  t.equal((caught as SpawnError).name, 'SpawnError');
  return caught as SpawnError;
}

/** The message names the program, the stage and the errno name (or kind when there is none). */
function assertMessage(t: Test, err: SpawnError, program: string, parts: string[]): void {
  t.ok(err.message.startsWith(`spawn ${program}:`), `message names the program: ${err.message}`);
  for (const p of parts) t.ok(err.message.includes(p), `message contains ${JSON.stringify(p)}: ${err.message}`);
}

// Warm up: the first spawn loads the addon and may start its reader thread; those descriptors are
// the library's steady state, not a leak of any failing spawn below.
t.before(async () => {
  const s = await spawnSession({ cmd: 'true' });
  await collect(s);
});

t.test('a missing program is not_found at resolve, path = the name (daytonaio/daytona#2283)', async (t) => {
  for (const tty of MODES) {
    const err = await expectSpawnError(t, { cmd: 'e-no-such-program-4711', tty }, {
      kind: 'not_found',
      stage: 'resolve',
      errnoName: 'ENOENT',
      errno: 2,
      path: 'e-no-such-program-4711',
      code: 'ENOENT',
    });
    assertMessage(t, err, 'e-no-such-program-4711', ['resolve', 'ENOENT']);
    t.strictSame(err.spawnargs, ['e-no-such-program-4711'], `${modeName(tty)}: spawnargs`);
  }
});

t.test('a missing cwd is bad_cwd at chdir, never not_found (nodejs/node#45279)', async (t) => {
  const cwd = join(dir, 'no-such-dir');
  for (const tty of MODES) {
    const err = await expectSpawnError(t, { cmd: 'true', cwd, tty }, {
      kind: 'bad_cwd',
      stage: 'chdir',
      errnoName: 'ENOENT',
      errno: 2,
      path: cwd,
      code: 'ENOENT',
    });
    assertMessage(t, err, 'true', ['chdir', cwd, 'ENOENT']);
  }
});

t.test('./tool without the execute bit is permission_denied at execve', async (t) => {
  for (const tty of MODES) {
    const err = await expectSpawnError(t, { cmd: './tool', cwd: dir, tty }, {
      kind: 'permission_denied',
      stage: 'execve',
      errnoName: 'EACCES',
      errno: 13,
      path: './tool',
      code: 'EACCES',
    });
    assertMessage(t, err, './tool', ['execve', 'EACCES']);
  }
});

t.test('./name is resolved against cwd (control for the EACCES case)', async (t) => {
  const r = await collect(await spawnSession({ cmd: './runnable', cwd: dir }));
  t.strictSame(r.exit, { code: 0, signal: null, reason: 'exited' });
  t.equal(r.stdout.toString('latin1'), 'runnable\n');
});

t.test('a directory as cmd is permission_denied at execve', async (t) => {
  for (const tty of MODES) {
    const err = await expectSpawnError(t, { cmd: '/tmp', tty }, {
      kind: 'permission_denied',
      stage: 'execve',
      errnoName: 'EACCES',
      errno: 13,
      path: '/tmp',
      code: 'EACCES',
    });
    assertMessage(t, err, '/tmp', ['execve', 'EACCES']);
  }
});

t.test('an executable with a bad ELF header is not_executable (ENOEXEC)', async (t) => {
  const file = join(dir, 'bad-elf');
  for (const tty of MODES) {
    const err = await expectSpawnError(t, { cmd: file, tty }, {
      kind: 'not_executable',
      stage: 'execve',
      errnoName: 'ENOEXEC',
      errno: 8,
      path: file,
      code: 'ENOEXEC',
    });
    assertMessage(t, err, file, ['execve', 'ENOEXEC']);
  }
});

t.test('a script whose #! interpreter is missing is not_executable with ENOENT, path = the script', async (t) => {
  const file = join(dir, 'script');
  for (const tty of MODES) {
    const err = await expectSpawnError(t, { cmd: file, tty }, {
      kind: 'not_executable',
      stage: 'execve',
      errnoName: 'ENOENT',
      errno: 2,
      path: file,
      code: 'ENOENT',
    });
    assertMessage(t, err, file, ['execve', 'ENOENT']);
  }
});

t.test('an unknown user is user_setup_failed at stage user, without errno', async (t) => {
  for (const tty of MODES) {
    const err = await expectSpawnError(t, { cmd: 'true', user: 'e-no-such-user-4711', tty }, {
      kind: 'user_setup_failed',
      stage: 'user',
      errnoName: null,
      errno: null,
      path: null,
      code: 'MSB_ERR_SPAWN',
    });
    assertMessage(t, err, 'true', ['user', 'user_setup_failed', 'e-no-such-user-4711']);
  }
});

t.test('an rlimit the kernel rejects (soft > hard) is resource_limit at setrlimit(RLIMIT_NOFILE)', async (t) => {
  for (const tty of MODES) {
    const err = await expectSpawnError(
      t,
      { cmd: 'true', rlimits: [{ resource: 'nofile', soft: 100, hard: 50 }], tty },
      {
        kind: 'resource_limit',
        stage: 'setrlimit(RLIMIT_NOFILE)',
        errnoName: 'EINVAL',
        errno: 22,
        path: null,
        code: 'EINVAL',
      },
    );
    assertMessage(t, err, 'true', ['setrlimit(RLIMIT_NOFILE)', 'EINVAL']);
  }
});

t.test('a NUL byte in an argument is bad_args at resolve in both modes', async (t) => {
  for (const tty of MODES) {
    const err = await expectSpawnError(t, { cmd: 'echo', args: ['a\0b'], tty }, {
      kind: 'bad_args',
      stage: 'resolve',
      errnoName: null,
      errno: null,
      path: 'echo',
      code: 'MSB_ERR_SPAWN',
    });
    assertMessage(t, err, 'echo', ['resolve', 'bad_args']);
  }
});

t.test('a NUL byte in an env value is bad_args at resolve in both modes', async (t) => {
  for (const tty of MODES) {
    for (const env of [{ E_NUL: 'a\0b' }, ['E_NUL=a\0b']]) {
      const err = await expectSpawnError(t, { cmd: 'true', env, tty }, {
        kind: 'bad_args',
        stage: 'resolve',
        errnoName: null,
        errno: null,
        path: 'true',
        code: 'MSB_ERR_SPAWN',
      });
      assertMessage(t, err, 'true', ['resolve', 'bad_args']);
    }
  }
});

t.test('a failing spawn never leaves a process or a descriptor behind (50 mixed failures)', async (t) => {
  // The reader thread of earlier subtests lingers briefly with its epoll and eventfd; take the
  // baseline after it has gone (failed spawns never start it).
  t.ok(await eventually(() => !nativeStats().readerRunning, 3000), 'the reader thread has stopped');
  const before = fdCount();
  for (let i = 0; i < 50; i++) {
    const tty = i % 2 === 0;
    const opts: SpawnSessionOptions =
      i % 3 === 0
        ? { cmd: 'e-no-such-program-4711', tty }
        : i % 3 === 1
          ? { cmd: 'true', cwd: join(dir, 'no-such-dir'), tty }
          : { cmd: join(dir, 'script'), tty };
    await spawnErrorShape(spawnSession(opts));
  }
  t.equal(fdCount(), before);
  t.strictSame(zombieChildren(), []);
});

t.test("the addon's env block: entries reach the child exactly, in order; a malformed block is a TypeError", async (t) => {
  const b = native();
  const invalid = { name: 'TypeError', code: 'MSB_ERR_INVALID_OPTION' };
  t.throws(() => b.spawn(pipeSpawn({ env: 'A=1' }), () => {}), { ...invalid, message: 'env must end with a NUL' });
  t.throws(() => b.spawn(pipeSpawn({ env: ['A=1'] as unknown as string }), () => {}), { ...invalid, message: 'env must be a string' });
  t.equal(envBlock([]), '');
  t.equal(envBlock(['A=1', 'B=x=y']), 'A=1\0B=x=y\0');

  let out = '';
  let exit!: (code: number | null) => void;
  const exited = new Promise<number | null>((resolve) => (exit = resolve));
  b.spawn(
    pipeSpawn({ file: '/usr/bin/env', env: 'Z=last\0A=1\0B=x=y\0EMPTY=\0' }),
    toNativeEvents((e) => {
      if (e.type === 'data') out += e.chunk.toString();
      if (e.type === 'exit') exit(e.code);
    }),
  );
  t.equal(await exited, 0);
  t.equal(out, 'Z=last\nA=1\nB=x=y\nEMPTY=\n');
});
