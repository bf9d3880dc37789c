// The command line end to end: `serve` on a socket, `exec` returning the remote exit code (128+N
// for a signal) and printing typed spawn failures (127/126/125), `ping`, an unreachable agent
// (255 for exec, 1 for ping), bad usage (2), and `--help` pinned by a golden file.
import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { once } from 'node:events';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const CLI = join(ROOT, 'ts', 'cli', 'run.ts');
const GOLDEN = join(ROOT, 'test', 'fixtures', 'golden', 'help.txt');

function cli(args: string[], input?: string): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import=tsx', CLI, ...args], { input, encoding: 'utf8', timeout: 30000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const dir = mkdtempSync(join(tmpdir(), 'msb-cli-test-'));
const sock = join(dir, 'agent.sock');
const address = `unix:${sock}`;
const server = spawn(process.execPath, ['--import=tsx', CLI, 'serve', '--listen', address, '--grace-ms', '500'], {
  stdio: ['ignore', 'ignore', 'pipe'],
});
const lines = createInterface({ input: server.stderr! });
for await (const line of lines) if (line.includes('listening')) break;
t.teardown(async () => {
  server.kill('SIGTERM');
  await once(server, 'exit');
  rmSync(dir, { recursive: true, force: true });
});

t.test('the socket is 0600 and removed when the agent stops', async (t) => {
  t.equal(statSync(sock).mode & 0o777, 0o600);
  const other = join(dir, 'other.sock');
  const s = spawn(process.execPath, ['--import=tsx', CLI, 'serve', '--listen', `unix:${other}`], { stdio: ['ignore', 'ignore', 'pipe'] });
  for await (const line of createInterface({ input: s.stderr! })) if (line.includes('listening')) break;
  t.ok(existsSync(other));
  s.kill('SIGTERM');
  const [code] = await once(s, 'exit');
  t.equal(code, 0);
  t.notOk(existsSync(other), 'socket file removed on exit');
});

t.test('serve refuses a path that exists and is not a socket', async (t) => {
  const file = join(dir, 'plain-file');
  writeFileSync(file, 'x');
  const r = cli(['serve', '--listen', `unix:${file}`]);
  t.equal(r.status, 1);
  t.match(r.stderr, /not a socket/);
  t.equal(readFileSync(file, 'utf8'), 'x', 'the file is untouched');
});

t.test('exec returns the remote exit code and output', async (t) => {
  const r = cli(['exec', '--connect', address, '--', 'sh', '-c', 'echo out; echo err >&2; exit 7']);
  t.same([r.status, r.stdout, r.stderr], [7, 'out\n', 'err\n']);
});

t.test('exec: a signal death exits 128+N', async (t) => {
  t.equal(cli(['exec', '--connect', address, '--', 'sh', '-c', 'kill -9 $$']).status, 137);
});

t.test('exec -i forwards stdin; without -i the remote stdin gets EOF at once', async (t) => {
  t.same([cli(['exec', '--connect', address, '-i', '--', 'cat'], 'piped\n').stdout], ['piped\n']);
  const r = cli(['exec', '--connect', address, '--', 'cat'], 'ignored\n');
  t.same([r.status, r.stdout], [0, '']);
});

t.test('exec passes -e, -w and -u', async (t) => {
  const r = cli(['exec', '--connect', address, '-e', 'A=1', '-e', 'B=two', '-w', '/tmp', '-u', 'nobody', '--', 'sh', '-c', 'echo $A $B $(pwd) $(id -u)']);
  t.equal(r.stdout, '1 two /tmp 65534\n');
});

t.test('typed spawn failures print kind, errno name and stage, with 127/126/125', async (t) => {
  const missing = cli(['exec', '--connect', address, '--', 'no-such-program-xyz']);
  t.equal(missing.status, 127);
  t.match(missing.stderr, /not_found \(ENOENT\) at resolve/);
  const noexec = join(dir, 'not-executable');
  writeFileSync(noexec, '#!/bin/sh\n');
  const denied = cli(['exec', '--connect', address, '--', noexec]);
  t.equal(denied.status, 126);
  t.match(denied.stderr, /permission_denied \(EACCES\) at execve/);
  const badCwd = cli(['exec', '--connect', address, '-w', '/no/such/dir', '--', 'true']);
  t.equal(badCwd.status, 125);
  t.match(badCwd.stderr, /bad_cwd \(ENOENT\) at chdir/);
});

t.test('ping prints the round trip; an unreachable agent is 1 for ping and 255 for exec', async (t) => {
  const ok = cli(['ping', '--connect', address]);
  t.equal(ok.status, 0);
  t.match(ok.stdout, /^pong from unix:.* in \d+\.\d{3} ms/);
  const gone = `unix:${join(dir, 'nobody-here.sock')}`;
  t.equal(cli(['ping', '--connect', gone]).status, 1);
  t.equal(cli(['exec', '--connect', gone, '--', 'true']).status, 255);
});

t.test('bad usage exits 2 with a hint', async (t) => {
  for (const args of [['bogus'], ['serve', '--after-exit', 'nope'], ['serve', '--drain-ms', '-5'], ['exec', '--connect', 'ftp:x', '--', 'true'], ['exec']]) {
    const r = cli(args);
    t.equal(r.status, 2, args.join(' '));
    t.match(r.stderr, /msb-agentd --help/);
  }
});

t.test('--version prints the package version; --help matches the golden', async (t) => {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
  t.same(cli(['--version']), { status: 0, stdout: `${pkg.version}\n`, stderr: '' });
  const help = cli(['--help']).stdout + cli(['serve', '--help']).stdout + cli(['exec', '--help']).stdout;
  if (process.env.UPDATE_GOLDEN === '1') writeFileSync(GOLDEN, help);
  t.equal(help, readFileSync(GOLDEN, 'utf8'));
});

t.test('exec -t: the remote gets a PTY of our size, resizes follow, the exit code comes back, the terminal is restored', async (t) => {
  const { spawnSession } = await import('../../ts/index.js');
  const inner = `node --import=tsx ${CLI} exec -t --connect ${address} -- sh -c 'stty size; echo READY; read x; stty size; exit 4'`;
  // The outer PTY is "our terminal"; after the exec, `stty -a` shows whether it was restored.
  const outer = await spawnSession({ cmd: 'sh', args: ['-c', `${inner}; echo "status=$?"; stty -a`], tty: true, rows: 33, cols: 101 });
  let seen = '';
  const ready = new Promise<void>((resolve) => {
    outer.stdout.on('data', (c: Buffer) => {
      seen += c.toString();
      if (seen.includes('READY')) resolve();
    });
  });
  await ready;
  outer.resize(44, 120);
  // Give the CLI's SIGWINCH → core.exec.resize a moment to land before the shell reads on.
  await new Promise((r) => setTimeout(r, 300));
  outer.stdin.write('\r');
  const exit = await outer.exited;
  t.equal(exit.code, 0);
  t.match(seen, /33 101\r*\n/, 'initial size forwarded');
  t.match(seen, /44 120\r*\n/, 'resize forwarded');
  t.match(seen, /status=4/, 'remote exit code propagated');
  t.match(seen, / icanon /, 'local terminal back in canonical mode');
  t.match(seen, / echo /, 'local echo restored');
});

t.test('core.shutdown stops the agent: exit 0 and the socket removed', async (t) => {
  const other = join(dir, 'shutdown.sock');
  const s = spawn(process.execPath, ['--import=tsx', CLI, 'serve', '--listen', `unix:${other}`], { stdio: ['ignore', 'ignore', 'pipe'] });
  for await (const line of createInterface({ input: s.stderr! })) if (line.includes('listening')) break;
  const { AgentClient } = await import('../../ts/client/index.js');
  const c = await AgentClient.connect(`unix:${other}`);
  c.shutdown();
  const [code] = await once(s, 'exit');
  await c.close();
  t.equal(code, 0);
  t.notOk(existsSync(other));
});
