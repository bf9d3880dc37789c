#!/usr/bin/env node
// The whole suite: Rust tests (cargo test) and the TypeScript tests (tap), then one plain line
// `N passed, N failed` over both. Exit status is non-zero if anything failed.

import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/** Runs a command, echoing its output, and hands every output line to `onLine`. */
function runEcho(cmd, args, onLine) {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    for (const stream of [child.stdout, child.stderr]) {
      let rest = '';
      stream.on('data', (d) => {
        const text = rest + d.toString();
        const lines = text.split('\n');
        rest = lines.pop();
        for (const l of lines) {
          process.stdout.write(`${l}\n`);
          onLine(l);
        }
      });
      stream.on('end', () => {
        if (rest) {
          process.stdout.write(`${rest}\n`);
          onLine(rest);
        }
      });
    }
    child.on('close', (code, signal) => resolve(code ?? (signal ? 1 : 0)));
  });
}

let passed = 0;
let failed = 0;

const cargoStatus = await runEcho('cargo', ['test', '--locked', '-p', 'spawn-core'], (l) => {
  const m = /^test result: \w+\. (\d+) passed; (\d+) failed/.exec(l);
  if (m) {
    passed += Number(m[1]);
    failed += Number(m[2]);
  }
});
if (cargoStatus !== 0 && failed === 0) failed += 1;

// tap's TAP stream: subtests of each file are indented four spaces. Count those; a file with
// no subtests counts as one test.
const extra = process.argv.slice(2);
let fileSubtests = 0;
const tapStatus = await runEcho('npx', ['tap', '-R', 'tap', ...extra], (l) => {
  if (/^ {4}ok \d+/.test(l)) {
    passed += 1;
    fileSubtests += 1;
  } else if (/^ {4}not ok \d+/.test(l)) {
    failed += 1;
    fileSubtests += 1;
  } else if (/^(not )?ok \d+ - /.test(l)) {
    if (fileSubtests === 0) {
      if (l.startsWith('not ok')) failed += 1;
      else passed += 1;
    }
    fileSubtests = 0;
  }
});
if (tapStatus !== 0 && failed === 0) failed += 1;

console.log(`${passed} passed, ${failed} failed`);
process.exit(failed > 0 || cargoStatus !== 0 || tapStatus !== 0 ? 1 : 0);
