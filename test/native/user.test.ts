// Running as another user: every accepted form of `user` ("name", "uid", "name:group",
// "uid:gid") switches uid, gid and supplementary groups, and HOME follows the user (PROTOCOL §5.1,
// DESIGN §3: when a user is given HOME defaults to that user's home unless env sets HOME; without a
// user the library inherits HOME from the caller). Expected values come from /etc/passwd and
// /etc/group, never from guesses.
import t from 'tap';
import { readFileSync } from 'node:fs';

import { spawnSession, type SpawnSessionOptions } from '../../ts/index.js';
import { collect } from '../fixtures/harness.js';

interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

function passwd(name: string): PasswdEntry {
  for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
    const f = line.split(':');
    if (f[0] === name) return { name, uid: Number(f[2]), gid: Number(f[3]), home: f[5] };
  }
  throw new Error(`no passwd entry for ${name}`);
}

interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

function groups(): GroupEntry[] {
  return readFileSync('/etc/group', 'utf8')
    .split('\n')
    .filter((l) => l.includes(':'))
    .map((l) => {
      const f = l.split(':');
      return { name: f[0], gid: Number(f[2]), members: f[3] ? f[3].split(',') : [] };
    });
}

const nobody = passwd('nobody');
const allGroups = groups();
const primaryGroup = allGroups.find((g) => g.gid === nobody.gid);
if (!primaryGroup) throw new Error(`/etc/group has no group with gid ${nobody.gid}`);
/** What initgroups() gives nobody: the primary gid plus every group listing nobody as a member. */
const nobodyGroups = [...new Set([nobody.gid, ...allGroups.filter((g) => g.members.includes('nobody')).map((g) => g.gid)])].sort(
  (a, b) => a - b,
);

/** Runs `sh -c script` and returns stdout lines (PTY line endings normalised). */
async function lines(opts: Omit<SpawnSessionOptions, 'cmd' | 'args'>, script: string): Promise<string[]> {
  const s = await spawnSession({ ...opts, cmd: 'sh', args: ['-c', script] });
  s.stdin.end();
  const r = await collect(s);
  if (r.exit.code !== 0) throw new Error(`sh exited ${JSON.stringify(r.exit)}: ${r.stderr.toString()}`);
  const text = r.stdout.toString('utf8');
  return (opts.tty ? text.replace(/\r\n/g, '\n') : text).split('\n').slice(0, -1);
}

const ID_SCRIPT = 'id -u; id -g; id -G; echo "$HOME"';

t.test('the passwd entries this test relies on', async (t) => {
  // Documents the machine; the assertions below compare with these values, whatever they are.
  t.equal(nobody.uid, 65534);
  t.equal(primaryGroup.gid, nobody.gid);
});

for (const user of ['nobody', String(nobody.uid)]) {
  t.test(`user '${user}' runs with nobody's uid, gid and groups`, async (t) => {
    for (const tty of [false, true]) {
      const [uid, gid, groupList] = await lines({ user, tty }, ID_SCRIPT);
      t.equal(uid, String(nobody.uid), `tty=${tty}: id -u`);
      t.equal(gid, String(nobody.gid), `tty=${tty}: id -g`);
      t.equal(groupList, nobodyGroups.join(' '), `tty=${tty}: id -G (root's groups dropped)`);
    }
  });
}

for (const user of [`nobody:${primaryGroup.name}`, `${nobody.uid}:${primaryGroup.gid}`]) {
  t.test(`user '${user}' (user:group form) sets uid and gid`, async (t) => {
    for (const tty of [false, true]) {
      const [uid, gid, groupList] = await lines({ user, tty }, ID_SCRIPT);
      t.equal(uid, String(nobody.uid), `tty=${tty}: id -u`);
      t.equal(gid, String(primaryGroup.gid), `tty=${tty}: id -g`);
      t.notOk(groupList.split(' ').includes('0'), `tty=${tty}: id -G has no root group: ${groupList}`);
    }
  });
}

t.test("a user's HOME defaults to the passwd home even though the caller has HOME set (PROTOCOL §5.1)", async (t) => {
  t.ok(process.env.HOME, 'the test process has a HOME to inherit');
  t.not(process.env.HOME, nobody.home, 'the caller HOME differs from nobody’s, so the test can tell');
  for (const user of ['nobody', String(nobody.uid), `nobody:${primaryGroup.name}`, `${nobody.uid}:${primaryGroup.gid}`]) {
    for (const tty of [false, true]) {
      const [home] = await lines({ user, tty }, 'echo "$HOME"');
      t.equal(home, nobody.home, `user=${user} tty=${tty}`);
    }
  }
});

t.test("a user's HOME is the passwd home with inheritEnv false", async (t) => {
  const [home] = await lines({ user: 'nobody', inheritEnv: false, env: { PATH: '/usr/bin:/bin' } }, 'echo "$HOME"');
  t.equal(home, nobody.home);
});

t.test('an explicit env HOME wins over the user default', async (t) => {
  for (const env of [{ HOME: '/e-explicit-home' }, ['HOME=/e-explicit-home']]) {
    for (const tty of [false, true]) {
      const [home] = await lines({ user: 'nobody', env, tty }, 'echo "$HOME"');
      t.equal(home, '/e-explicit-home', `env=${JSON.stringify(env)} tty=${tty}`);
    }
  }
});

t.test('without a user, HOME is inherited from process.env', async (t) => {
  const saved = process.env.HOME;
  t.teardown(() => {
    if (saved === undefined) delete process.env.HOME;
    else process.env.HOME = saved;
  });
  process.env.HOME = '/e-caller-home';
  for (const tty of [false, true]) {
    const [uid, home] = await lines({ tty }, 'id -u; echo "$HOME"');
    t.equal(uid, String(process.getuid?.()), `tty=${tty}: runs as the caller`);
    t.equal(home, '/e-caller-home', `tty=${tty}`);
  }
});

t.test('without a user and without an inherited HOME, the library adds none', async (t) => {
  const s = await spawnSession({ cmd: 'env', args: ['-0'], inheritEnv: false, env: { E_ONLY: '1' } });
  const r = await collect(s);
  t.strictSame(r.exit, { code: 0, signal: null, reason: 'exited' });
  t.equal(r.stdout.toString('utf8'), 'E_ONLY=1\0');
});
