// Correlation ids (PROTOCOL §6.1): from max(1, idStart) upward, wrapping before idEndExclusive,
// skipping ids whose session is still open; never id 0. Checked on the allocator and on the wire.
import t from 'tap';

import { AgentClient } from '../../ts/client/index.js';
import { IdAllocator } from '../../ts/client/id-allocator.js';
import { rangePrefix, readyFrame, startFakeAgent } from '../fixtures/client-fake-agent.js';

t.test('the allocator: start, wrap, skip, exhaustion', async (t) => {
  const ids = new IdAllocator(0, 4); // usable: 1, 2, 3
  t.equal(ids.first, 1, 'never 0');
  t.same([ids.take(), ids.take(), ids.take()], [1, 2, 3]);
  t.throws(() => ids.take(), { name: 'SessionError', code: 'MSB_ERR_SESSION_EXISTS' });
  ids.release(2);
  t.equal(ids.take(), 2, 'the only free id');
  ids.release(1);
  ids.release(3);
  t.equal(ids.take(), 3, 'the cursor goes on after 2, not back to the lowest');
  t.equal(ids.take(), 1, 'then wraps');
  t.equal(ids.size, 3);
  t.equal(ids.isInUse(2), true);

  const high = new IdAllocator(0xffff_fffd, 2 ** 32);
  t.same([high.take(), high.take(), high.take()], [0xffff_fffd, 0xffff_fffe, 0xffff_ffff], 'the top u32 is usable');
  high.release(0xffff_fffd);
  t.equal(high.take(), 0xffff_fffd, 'wraps before 2^32');
});

t.test('on the wire: ids start at idStart, skip an open exec, wrap before idEndExclusive', async (t) => {
  const agent = await startFakeAgent({ greeting: Buffer.concat([rangePrefix(5, 8), readyFrame()]) });
  const client = await AgentClient.connect(agent.address);
  const peer = await agent.accept();
  t.teardown(async () => {
    await client.close();
    await agent.close();
  });
  const sent: number[] = [];
  const pingOnce = async (): Promise<void> => {
    const p = client.ping();
    const f = await peer.next();
    sent.push(f.id);
    peer.send(f.id, { type: 'pong', payload: {} });
    await p;
  };

  const execP = client.exec({ cmd: 'sleep', args: ['1'] });
  const req = await peer.next();
  sent.push(req.id);
  peer.send(req.id, { type: 'execStarted', payload: { pid: 100 } });
  const exec = await execP;

  await pingOnce(); // 6
  await pingOnce(); // 7
  await pingOnce(); // wraps: 5 is the open exec, so 6
  peer.send(5, { type: 'execExited', payload: { code: 0, signal: null } });
  t.same(await exec.exited, { code: 0, signal: null, reason: 'exited' });
  await pingOnce(); // 7
  await pingOnce(); // 5, free again
  t.same(sent, [5, 6, 7, 6, 7, 5]);
});

t.test('idStart 0 starts at 1; every id open → SessionError MSB_ERR_SESSION_EXISTS, nothing sent', async (t) => {
  const agent = await startFakeAgent({ greeting: Buffer.concat([rangePrefix(0, 3), readyFrame()]) });
  const client = await AgentClient.connect(agent.address);
  const peer = await agent.accept();
  t.teardown(async () => {
    await client.close();
    await agent.close();
  });
  const a = client.ping();
  const b = client.ping();
  t.same([(await peer.next()).id, (await peer.next()).id], [1, 2]);
  await t.rejects(client.ping(), { name: 'SessionError', code: 'MSB_ERR_SESSION_EXISTS' });
  await t.rejects(client.exec({ cmd: 'true' }), { name: 'SessionError', code: 'MSB_ERR_SESSION_EXISTS' });
  peer.send(1, { type: 'pong', payload: {} });
  peer.send(2, { type: 'pong', payload: {} });
  await a;
  await b;
  t.equal(peer.frames.length, 2, 'the refused requests sent nothing');
});
