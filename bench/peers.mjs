// The peers (node-pty built from source, @lydell/node-pty prebuilt), installed into bench/.peers
// rather than as devDependencies, so `npm ci` never builds node-pty.

import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const peersDir = join(dirname(fileURLToPath(import.meta.url)), '.peers');
export const PEERS = ['node-pty', '@lydell/node-pty'];

const log = (...a) => console.error('[bench]', ...a);

export function installPeers() {
  const need = PEERS.filter((m) => !existsSync(join(peersDir, 'node_modules', m, 'package.json')));
  if (need.length === 0) return;
  mkdirSync(peersDir, { recursive: true });
  if (!existsSync(join(peersDir, 'package.json'))) writeFileSync(join(peersDir, 'package.json'), '{"name":"bench-peers","private":true}\n');
  log(`installing ${need.join(', ')} into bench/.peers (node-pty builds with node-gyp)…`);
  try {
    execFileSync('npm', ['install', '--prefix', peersDir, '--ignore-scripts=false', '--foreground-scripts', '--no-audit', '--no-fund', ...need], {
      stdio: ['ignore', 2, 2],
    });
  } catch (e) {
    log(`peer install failed (${e.message}); continuing with what loaded`);
  }
}

/** The peer module, or null (logged) when it did not install or load. */
export function loadPeer(name) {
  try {
    const req = createRequire(join(peersDir, 'package.json'));
    return req(name);
  } catch (e) {
    log(`${name} unavailable: ${e.message.split('\n')[0]}`);
    return null;
  }
}

export function peerVersion(name) {
  return JSON.parse(readFileSync(join(peersDir, 'node_modules', name, 'package.json'), 'utf8')).version;
}
