/**
 * The agent's own stdin/stdout as one single-peer stream of raw frames. When the peer closes
 * stdin (or the connection ends for a malformed frame), `onEnd` runs: stdio has no second peer,
 * so the agent stops.
 */

import { Duplex } from 'node:stream';

export function stdioDuplex(onEnd: () => void): Duplex {
  const input = process.stdin;
  const output = process.stdout;
  const duplex = new Duplex({
    read() {
      input.resume();
    },
    write(chunk: Buffer, _enc, cb) {
      if (!output.write(chunk)) output.once('drain', () => cb());
      else cb();
    },
    destroy(err, cb) {
      // Nothing more will be read: let go of stdin so the process can end.
      input.destroy();
      onEnd();
      cb(err);
    },
  });
  input.on('data', (c: Buffer) => {
    if (!duplex.push(c)) input.pause();
  });
  input.on('end', () => duplex.push(null));
  output.on('error', () => duplex.destroy());
  return duplex;
}
