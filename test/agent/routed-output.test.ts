// Exec output routed natively (ts/agent/outbound.ts, crates/spawn-core/src/route.rs): on a socket
// connection the reader thread writes output frames itself. The frames must be exactly what
// encodeMessage makes, in protocol order (started first, exited last, nothing overtaking either),
// counted in the activity meter as if JavaScript had sent them, and the writer must go with the
// connection.
import t from 'tap';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';

import { nativeStats } from '../../ts/native/index.js';
import { FrameDecoder, decodeMessage, encodeMessage, type ReceivedMessage } from '../../ts/protocol/index.js';
import { execRequest } from '../fixtures/agent-sink.js';
import { eventually } from '../fixtures/harness.js';
import { startAgentOnSocket } from '../fixtures/agent-on-socket.js';

const { agent, path } = await startAgentOnSocket(t, 'routed');

/** A client that keeps every frame's exact bytes. */
class ByteClient {
  readonly socket: Socket;
  readonly frames: { bytes: Buffer; message: ReceivedMessage }[] = [];
  readonly #decoder = new FrameDecoder();
  #prefix = 8;
  #wake: (() => void) | null = null;

  constructor(socket: Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      const skip = Math.min(this.#prefix, chunk.length);
      this.#prefix -= skip;
      this.#decoder.push(chunk.subarray(skip));
      for (let f = this.#decoder.readFrame(); f !== null; f = this.#decoder.readFrame()) {
        const bytes = Buffer.concat([Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, f.flags]), f.body]);
        bytes.writeUInt32BE(f.body.length + 5, 0);
        bytes.writeUInt32BE(f.id, 4);
        const m = decodeMessage(f);
        if (!m.ok) throw new Error(`undecodable frame on id ${f.id}`);
        this.frames.push({ bytes, message: m.message });
      }
      this.#wake?.();
    });
  }

  static async open(): Promise<ByteClient> {
    const s = connect(path);
    await once(s, 'connect');
    return new ByteClient(s);
  }

  async until(pred: (m: ReceivedMessage) => boolean, ms = 20_000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!this.frames.some((f) => pred(f.message))) {
      if (Date.now() > deadline) throw new Error('timed out waiting for a frame');
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
        setTimeout(resolve, 200);
      });
    }
  }

  of(id: number): { bytes: Buffer; message: ReceivedMessage }[] {
    return this.frames.filter((f) => f.message.id === id);
  }
}

function dataOf(frames: { message: ReceivedMessage }[], type: string): Buffer {
  return Buffer.concat(frames.filter((f) => f.message.type === type).map((f) => (f.message.payload as { data: Buffer }).data));
}

const counters = () => agent.meter.snapshot().activity_counters;

t.test('pipe output: frames byte-identical to encodeMessage, in order, counted exactly', async (t) => {
  const c = await ByteClient.open();
  t.teardown(() => c.socket.destroy());
  await c.until((m) => m.type === 'ready');
  const id = 1;
  const before = counters();
  // Sizes in every byte-string header class, on both streams, the first without delay.
  const script = [
    'head -c 3000000 /dev/zero | tr "\\0" x',
    'printf a',
    'sleep 0.05',
    'printf %0300d 7 >&2',
    'sleep 0.05',
    'seq 1 20000',
    'head -c 1500000 /dev/zero >&2',
  ].join('; ');
  c.socket.write(encodeMessage(id, execRequest('sh', ['-c', script])));
  await c.until((m) => m.id === id && m.type === 'execExited');
  const frames = c.of(id);
  t.equal(frames[0]!.message.type, 'execStarted', 'started comes first');
  t.equal(frames.at(-1)!.message.type, 'execExited', 'exited comes last');
  t.same(frames.at(-1)!.message.payload, { code: 0, signal: null });
  const mismatched = frames.filter((f) => !f.bytes.equals(encodeMessage(id, f.message)));
  t.equal(mismatched.length, 0, `every one of ${frames.length} frames is byte-identical to encodeMessage`);
  const seq = Array.from({ length: 20000 }, (_, i) => `${i + 1}\n`).join('');
  t.ok(dataOf(frames, 'execStdout').equals(Buffer.from('x'.repeat(3_000_000) + 'a' + seq)), 'stdout, byte-exact');
  t.ok(dataOf(frames, 'execStderr').equals(Buffer.concat([Buffer.from('0'.repeat(299) + '7'), Buffer.alloc(1_500_000)])), 'stderr, byte-exact');
  const sizes = frames.filter((f) => f.message.type !== 'execStarted' && f.message.type !== 'execExited').map((f) => (f.message.payload as { data: Buffer }).data.length);
  t.ok(sizes.some((n) => n >= 65536), 'some frames carry 64 KiB or more');
  const after = counters();
  const outputFrames = frames.length - 2;
  t.equal(after.exec_output_bytes - before.exec_output_bytes, BigInt(3_000_000 + 1 + 300 + seq.length + 1_500_000), 'exec_output_bytes counts every byte');
  t.equal(after.guest_messages - before.guest_messages, BigInt(outputFrames + 2), 'guest_messages counts every frame, started and exited included');
});

t.test('PTY output is routed the same way', async (t) => {
  const c = await ByteClient.open();
  t.teardown(() => c.socket.destroy());
  await c.until((m) => m.type === 'ready');
  const id = 1;
  c.socket.write(encodeMessage(id, execRequest('sh', ['-c', 'stty raw -echo; head -c 500000 /dev/zero | tr "\\0" y; printf end'], { tty: true })));
  await c.until((m) => m.id === id && m.type === 'execExited');
  const frames = c.of(id);
  t.equal(frames[0]!.message.type, 'execStarted');
  t.equal(frames.at(-1)!.message.type, 'execExited');
  t.equal(frames.filter((f) => !f.bytes.equals(encodeMessage(id, f.message))).length, 0, 'every frame is byte-identical');
  t.equal(dataOf(frames, 'execStdout').toString(), 'y'.repeat(500_000) + 'end');
  t.equal(frames.filter((f) => f.message.type === 'execStderr').length, 0, 'a PTY has one output');
});

t.test("the writer goes with the connection: no native session is left once it closes", async (t) => {
  // The earlier tests' connections are closing; the agent then holds nothing native.
  t.ok(await eventually(() => nativeStats().sessions === 0, 10_000), 'nothing native before');
  const base = 0;
  const c = await ByteClient.open();
  await c.until((m) => m.type === 'ready');
  t.equal(nativeStats().sessions, base + 1, 'the connection holds one native writer');
  c.socket.write(encodeMessage(1, execRequest('yes')));
  await c.until((m) => m.id === 1 && m.type === 'execStdout');
  t.equal(nativeStats().sessions, base + 2, 'and its exec session');
  c.socket.destroy();
  t.ok(await eventually(() => nativeStats().sessions === base, 10_000), 'both are gone after the client left');
});
