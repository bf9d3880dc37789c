// TCP forwarding through the agent (PROTOCOL §4.10 with W3/W19 fixed): connect inside the guest,
// bytes both ways, half-close in either direction, `core.tcp.closed` once both directions are
// done, typed failures, and a stalled destination that cannot hold up another session.
import t from 'tap';
import { createHash } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import { once } from 'node:events';

import { rawConnect, type RawClient } from '../fixtures/raw-client.js';
import { startAgentOnSocket } from '../fixtures/agent-on-socket.js';
import { pattern } from '../fixtures/harness.js';
import type { ReceivedMessage } from '../../ts/protocol/index.js';

const MiB = 1024 * 1024;
const { path, clients } = await startAgentOnSocket(t, 'tcp');
const c: RawClient = await rawConnect(path);
clients.push(c);

async function listen(onSocket: (s: Socket) => void): Promise<{ server: Server; port: number }> {
  const server = createServer(onSocket);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => server.close());
  return { server, port: (server.address() as { port: number }).port };
}

function connectTcp(id: number, port: number, host = '127.0.0.1'): void {
  c.send(id, { type: 'tcpConnect', payload: { host, port } });
}

function dataOf(ms: ReceivedMessage[]): Buffer {
  return Buffer.concat(ms.filter((m) => m.type === 'tcpData').map((m) => (m.payload as { data: Buffer }).data));
}

t.test('50 MiB round trip through an echo server, byte-exact', async (t) => {
  const { port } = await listen((s) => s.pipe(s));
  connectTcp(1, port);
  t.equal((await c.next((m) => m.id === 1)).type, 'tcpConnected');
  const input = pattern(50 * MiB, 3);
  let echoed = 0;
  const hash = createHash('sha256');
  const drain = async (until: number): Promise<void> => {
    while (echoed < until) {
      const m = await c.next((x) => x.id === 1, 20000);
      t.equal(m.type, 'tcpData');
      const d = (m.payload as { data: Buffer }).data;
      hash.update(d);
      echoed += d.length;
    }
  };
  for (let off = 0; off < input.length; off += MiB) {
    c.send(1, { type: 'tcpData', payload: { data: input.subarray(off, off + MiB) } });
    // Keep at most 8 MiB in flight: this test is about integrity, not the queue bound.
    await drain(off + MiB - 8 * MiB);
  }
  await drain(input.length);
  t.equal(hash.digest('hex'), createHash('sha256').update(input).digest('hex'));
  c.send(1, { type: 'tcpEof', payload: {} });
  const rest = await c.untilTerminal(1);
  t.same(rest.map((m) => m.type), ['tcpEof', 'tcpClosed'], 'the echo server ends after our EOF; then closed');
});

t.test('half-close from the host: the destination sees EOF and can still answer', async (t) => {
  const { port } = await listen((s) => {
    const got: Buffer[] = [];
    s.on('data', (d: Buffer) => got.push(d));
    s.on('end', () => s.end(`you said ${Buffer.concat(got).toString()}`));
  });
  connectTcp(2, port);
  c.send(2, { type: 'tcpData', payload: { data: Buffer.from('hello') } });
  c.send(2, { type: 'tcpEof', payload: {} });
  const ms = await c.untilTerminal(2);
  t.equal(ms[0]!.type, 'tcpConnected');
  t.equal(dataOf(ms).toString(), 'you said hello');
  t.same(ms.slice(-2).map((m) => m.type), ['tcpEof', 'tcpClosed']);
});

t.test('half-close from the destination: tcp.eof, and host data still flows until our EOF', async (t) => {
  let received = '';
  const done = new Promise<void>((resolve) => {
    void listen((s) => {
      s.end('bye');
      s.on('data', (d: Buffer) => (received += d.toString()));
      s.on('end', () => resolve());
    }).then(({ port }) => connectTcp(3, port));
  });
  t.equal((await c.next((m) => m.id === 3)).type, 'tcpConnected');
  const bye = await c.next((m) => m.id === 3);
  t.same([bye.type, (bye.payload as { data: Buffer }).data.toString()], ['tcpData', 'bye']);
  t.equal((await c.next((m) => m.id === 3)).type, 'tcpEof');
  c.send(3, { type: 'tcpData', payload: { data: Buffer.from('still here') } });
  c.send(3, { type: 'tcpEof', payload: {} });
  await done;
  t.equal(received, 'still here');
  t.equal((await c.next((m) => m.id === 3)).type, 'tcpClosed');
});

t.test('a refused port and an unresolvable host give core.tcp.failed', async (t) => {
  const { server, port } = await listen(() => {});
  server.close();
  await once(server, 'close');
  connectTcp(4, port);
  const refused = await c.untilTerminal(4);
  t.equal(refused.length, 1);
  t.equal(refused[0]!.type, 'tcpFailed');
  t.match((refused[0]!.payload as { error: string }).error, new RegExp(`^connect 127\\.0\\.0\\.1:${port}: .*ECONNREFUSED`));
  connectTcp(5, 80, 'no-such-host.invalid');
  const unresolved = await c.untilTerminal(5);
  t.equal(unresolved[0]!.type, 'tcpFailed');
  t.match((unresolved[0]!.payload as { error: string }).error, /^connect no-such-host\.invalid:80: /);
});

t.test('tcp.close aborts the session and ends it with tcp.closed', async (t) => {
  const { port } = await listen(() => {});
  connectTcp(6, port);
  await c.next((m) => m.id === 6 && m.type === 'tcpConnected');
  c.send(6, { type: 'tcpClose', payload: {} });
  t.equal((await c.next((m) => m.id === 6)).type, 'tcpClosed');
});

t.test('50 concurrent sessions each get their own bytes back', async (t) => {
  const { port } = await listen((s) => s.pipe(s));
  const ids = Array.from({ length: 50 }, (_, i) => 100 + i);
  for (const id of ids) {
    connectTcp(id, port);
    c.send(id, { type: 'tcpData', payload: { data: Buffer.from(`session ${id}`) } });
    c.send(id, { type: 'tcpEof', payload: {} });
  }
  for (const id of ids) {
    const ms = await c.untilTerminal(id);
    t.equal(dataOf(ms).toString(), `session ${id}`);
    t.equal(ms.at(-1)!.type, 'tcpClosed');
  }
});

t.test('a destination that never reads fails its own session only; another stays fast', async (t) => {
  const { port: stalledPort } = await listen((s) => s.pause());
  const { port: echoPort } = await listen((s) => s.pipe(s));
  connectTcp(200, stalledPort);
  await c.next((m) => m.id === 200 && m.type === 'tcpConnected');
  for (let i = 0; i < 40; i++) c.send(200, { type: 'tcpData', payload: { data: Buffer.alloc(MiB, i) } });
  const failed = await c.next((m) => m.id === 200, 20000);
  t.equal(failed.type, 'tcpFailed');
  t.match((failed.payload as { error: string }).error, /not reading/);
  const started = Date.now();
  connectTcp(201, echoPort);
  c.send(201, { type: 'tcpData', payload: { data: Buffer.from('quick') } });
  c.send(201, { type: 'tcpEof', payload: {} });
  const ms = await c.untilTerminal(201);
  t.equal(dataOf(ms).toString(), 'quick');
  t.ok(Date.now() - started < 500, `the other session took ${Date.now() - started} ms`);
});

t.test('a duplicate connect on a live id is refused; data for an unknown id gets tcp.failed', async (t) => {
  const { port } = await listen(() => {});
  connectTcp(300, port);
  await c.next((m) => m.id === 300 && m.type === 'tcpConnected');
  connectTcp(300, port);
  t.match((await c.next((m) => m.id === 300)).payload, { kind: 'invalid_session' });
  c.send(301, { type: 'tcpData', payload: { data: Buffer.from('x') } });
  t.same((await c.next((m) => m.id === 301)).payload, { error: 'unknown TCP session: 301' });
  c.send(300, { type: 'tcpClose', payload: {} });
  await c.next((m) => m.id === 300 && m.type === 'tcpClosed');
});
