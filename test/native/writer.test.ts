// The native writer (adoptWriter / send, crates/spawn-core/src/outbox.rs): it writes over a
// duplicate of the caller's descriptor, in order, head and data as one write; after close it
// refuses sends and reports its end; bad descriptors, handles and routes are typed errors. A
// unix socket connection's writer asks the kernel for a larger send buffer; nothing else does.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, constants, mkdtempSync, openSync, readFileSync, readSync, rmSync, writeSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { NativeOutbound, UNIX_SEND_BUFFER, socketFd } from '../../ts/agent/outbound.js';
import { adoptWriter, native, nativeStats } from '../../ts/native/index.js';
import type { NativeEvent, NativeHandle } from '../../ts/native/binding.js';
import { pipeSpawn } from '../fixtures/native-options.js';
import { eventually } from '../fixtures/harness.js';

/** A FIFO's read end (non-blocking) and write end. */
function fifo(t: { teardown(fn: () => void): void }): { r: number; w: number } {
  const dir = mkdtempSync(join(tmpdir(), 'msb-writer-'));
  const path = join(dir, 'fifo');
  execFileSync('mkfifo', [path]);
  const r = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  const w = openSync(path, constants.O_WRONLY);
  t.teardown(() => {
    closeSync(r);
    closeSync(w);
    rmSync(dir, { recursive: true, force: true });
  });
  return { r, w };
}

function readAll(fd: number): string {
  const buf = Buffer.alloc(1 << 16);
  let out = '';
  for (;;) {
    let n = 0;
    try {
      n = readSync(fd, buf);
    } catch {
      return out;
    }
    if (n === 0) return out;
    out += buf.subarray(0, n).toString();
  }
}

t.test('sends go out in order over a duplicate; after close the writer refuses and reports its end', async (t) => {
  const { r, w } = fifo(t);
  const base = nativeStats().sessions;
  const events: NativeEvent[] = [];
  let ended!: () => void;
  const end = new Promise<void>((resolve) => (ended = resolve));
  const writer = adoptWriter(w, (e) => {
    events.push(e);
    if (e.type === 'exit') ended();
  });
  t.equal(nativeStats().sessions, base + 1, 'one native session for the writer');
  t.equal(writer.send(Buffer.from('one,')), 'sent');
  t.equal(writer.send(Buffer.from('two,'), Buffer.from('three')), 'sent', 'head and data as one send');
  t.equal(readAll(r), 'one,two,three');
  writeSync(w, 'own');
  t.equal(readAll(r), 'own', "the caller's descriptor is still its own");
  writer.close();
  await end;
  t.equal(writer.send(Buffer.from('late')), 'closed', 'a closed writer refuses');
  t.same(
    events.map((e) => e.type),
    ['exit'],
    'nothing but the end is reported: sends are not echoed back',
  );
  t.equal(readAll(r), '', 'nothing was written after close');
  t.ok(await eventually(() => nativeStats().sessions === base, 5000), 'the writer is gone');
});

t.test('bad descriptors, handles and routes are TypeErrors with MSB_ERR_INVALID_OPTION', async (t) => {
  const b = native();
  const invalid = { name: 'TypeError', code: 'MSB_ERR_INVALID_OPTION' };
  t.throws(() => b.adoptWriter(-1, () => {}), invalid, 'a negative fd');
  t.throws(() => b.adoptWriter(1_000_000, () => {}), invalid, 'a descriptor that is not open');
  t.throws(() => b.adoptWriter(0, 'nope' as unknown as () => void), invalid, 'no callback');
  let exit!: () => void;
  const exited = new Promise<void>((resolve) => (exit = resolve));
  const spawned = b.spawn(pipeSpawn({ file: 'sleep', args: ['5'] }), (e) => {
    if (typeof e !== 'number' && e.type === 'exit') exit();
  }) as { handle: NativeHandle };
  t.throws(() => b.send(spawned.handle, Buffer.from('x')), { ...invalid, message: "send needs a writer's handle" });
  const parts = { flags: 0, envelope: Buffer.alloc(1), payload: Buffer.alloc(1) };
  const route = { writer: spawned.handle, id: 1, stdout: parts, stderr: parts };
  t.throws(
    () => b.spawn(pipeSpawn({ route }), () => {}),
    { ...invalid, message: "route.writer must be a writer's handle" },
    'a route to something that is not a writer',
  );
  b.close(spawned.handle);
  await exited;
});

/** A connected client socket to a server listening on `address`, closed at teardown. */
async function connected(t: { teardown(fn: () => unknown): void }, listen: (s: Server) => void): Promise<Socket> {
  const server = createServer((peer) => peer.resume());
  listen(server);
  await once(server, 'listening');
  const address = server.address();
  const socket = typeof address === 'string' ? connect(address) : connect(address!.port, '127.0.0.1');
  await once(socket, 'connect');
  t.teardown(() => {
    socket.destroy();
    server.close();
  });
  return socket;
}

t.test('a unix socket is given the send buffer asked for; other descriptors are left alone', async (t) => {
  const wmemMax = Number(readFileSync('/proc/sys/net/core/wmem_max', 'utf8'));
  const capEff = /^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'))![1]!;
  const mayForce = (BigInt(`0x${capEff}`) & (1n << 12n)) !== 0n; // CAP_NET_ADMIN
  // The kernel doubles what it grants; it caps the request at net.core.wmem_max unless the
  // process may force it (CAP_NET_ADMIN: SO_SNDBUFFORCE).
  const granted = (bytes: number): number => 2 * (mayForce ? bytes : Math.min(bytes, wmemMax));
  const dir = mkdtempSync(join(tmpdir(), 'msb-writer-sock-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const unix = await connected(t, (s) => s.listen(join(dir, 's')));
  const tcp = await connected(t, (s) => s.listen(0, '127.0.0.1'));
  const { w } = fifo(t);

  const writers = [
    adoptWriter(socketFd(unix)!, () => {}, 1 << 20),
    adoptWriter(socketFd(unix)!, () => {}),
    adoptWriter(socketFd(tcp)!, () => {}, 1 << 20),
    adoptWriter(w, () => {}, 1 << 20),
  ];
  t.teardown(() => writers.forEach((x) => x.close()));
  t.same(
    writers.map((x) => x.sendBuffer),
    [granted(1 << 20), null, null, null],
    'unix socket sized; no size asked, TCP (which tunes its own) and a FIFO untouched',
  );
  t.equal(writers[0]!.send(Buffer.from('still writes')), 'sent');

  const invalid = { name: 'TypeError', code: 'MSB_ERR_INVALID_OPTION' };
  t.throws(() => native().adoptWriter(w, () => {}, -1), invalid, 'a negative size');
  t.throws(() => native().adoptWriter(w, () => {}, 'big' as unknown as number), invalid, 'a size that is no number');

  // The agent's connections: unix sockets get UNIX_SEND_BUFFER, TCP is left to tune itself.
  const events = { drain: () => {}, failed: () => {} };
  const viaUnix = NativeOutbound.for(await connected(t, (s) => s.listen(join(dir, 'a'))), events)!;
  const viaTcp = NativeOutbound.for(tcp, events)!;
  t.teardown(() => [viaUnix, viaTcp].forEach((o) => o.close()));
  t.equal(viaUnix.sendBuffer, granted(UNIX_SEND_BUFFER));
  t.equal(viaTcp.sendBuffer, null);
});
