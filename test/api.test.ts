// The public surface and the native surface are pinned by goldens: drift between binding.ts and
// Rust, or an accidental export, fails here. UPDATE_GOLDEN=1 re-blesses.
import t from 'tap';
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

import * as api from '../ts/index.js';
import { native } from '../ts/native/index.js';
import { NATIVE_EXPORTS } from '../ts/native/binding.js';
import { pipeSpawn } from './fixtures/native-options.js';

const GOLDEN = join(dirname(fileURLToPath(import.meta.url)), 'fixtures', 'golden');

function golden(name: string, actual: unknown): unknown {
  const path = join(GOLDEN, name);
  if (process.env.UPDATE_GOLDEN === '1') writeFileSync(path, `${JSON.stringify(actual, null, 2)}\n`);
  return JSON.parse(readFileSync(path, 'utf8'));
}

t.test('public exports match the golden list and expose no Native* name', async (t) => {
  const names = Object.keys(api).sort();
  t.same(names, golden('public-exports.json', names));
  t.equal(names.filter((n) => n.startsWith('Native') && n !== 'NativeError').length, 0);
});

t.test('the addon exports exactly what binding.ts declares', async (t) => {
  const exported = Object.keys(native()).sort();
  t.same(exported, [...NATIVE_EXPORTS].sort());
  t.same(exported, golden('native-exports.json', exported));
});

t.test('spawn returns {pid, handle} with pid a positive integer and handle an External', async (t) => {
  const b = native();
  let exited: unknown = null;
  const done = new Promise<void>((resolve) => {
    const r = b.spawn(
      pipeSpawn({ file: 'true' }),
      (e) => {
        if (typeof e !== 'number' && e.type === 'exit') {
          exited = e;
          resolve();
        }
      },
    );
    t.same(Object.keys(r).sort(), ['handle', 'pid']);
    t.ok(Number.isInteger((r as { pid: number }).pid) && (r as { pid: number }).pid > 0);
    t.equal(Object.prototype.toString.call((r as { handle: unknown }).handle), '[object Object]');
  });
  await done;
  t.same(exited, { type: 'exit', code: 0, signal: null });
});

t.test('the addon calls back with output as (stream code, Buffer) and every other event as one object', async (t) => {
  const b = native();
  const calls: unknown[][] = [];
  await new Promise<void>((resolve) => {
    b.spawn(
      pipeSpawn({ file: 'sh', args: ['-c', 'printf out; printf err >&2'], stdin: 'null' }),
      (...args) => {
        calls.push(args);
        if (typeof args[0] === 'object' && args[0].type === 'exit') resolve();
      },
    );
  });
  const output = calls.filter((c) => typeof c[0] === 'number').map(([code, chunk]) => [code, (chunk as Buffer).toString()]);
  t.same(output.sort(), [
    [0, 'out'],
    [1, 'err'],
  ]);
  t.ok(calls.every((c) => typeof c[0] !== 'number' || Buffer.isBuffer(c[1])), 'each chunk is a Buffer');
  t.same(calls.at(-1), [{ type: 'exit', code: 0, signal: null }, undefined], 'the exit comes last, as an object');
});

t.test('wrong argument types throw TypeError with MSB_ERR_INVALID_OPTION', async (t) => {
  const b = native() as unknown as { spawn: (...a: unknown[]) => unknown; write: (...a: unknown[]) => unknown };
  t.throws(() => b.spawn(42, () => {}), { name: 'TypeError', code: 'MSB_ERR_INVALID_OPTION' });
  t.throws(() => b.write({}, Buffer.alloc(1)), { name: 'TypeError', code: 'MSB_ERR_INVALID_OPTION' });
});
