// encodeDataFrame: the two-part frame of bulk data messages is byte-for-byte encodeMessage's, at
// every byte-string header size boundary, for every data-carrying type.
import t from 'tap';

import { encodeDataFrame, encodeMessage, type DataMessageName } from '../../ts/protocol/index.js';
import { pattern } from '../fixtures/harness.js';

const TYPES: DataMessageName[] = ['execStdout', 'execStderr', 'execStdin', 'tcpData', 'fsData'];
const SIZES = [0, 1, 23, 24, 255, 256, 65535, 65536, 1024 * 1024, 4 * 1024 * 1024 - 64];

for (const type of TYPES) {
  t.test(type, async (t) => {
    for (const n of SIZES) {
      const data = pattern(n, n + 1);
      const [head, body] = encodeDataFrame(4242, type, data);
      t.equal(body, data, `${n}: the chunk itself, not a copy`);
      t.ok(Buffer.concat([head, body]).equals(encodeMessage(4242, { type, payload: { data } } as Parameters<typeof encodeMessage>[1])), `${n} bytes: identical frame`);
    }
  });
}

t.test('a chunk too large for one frame is refused as encodeMessage refuses it', async (t) => {
  t.throws(() => encodeDataFrame(1, 'execStdout', Buffer.alloc(4 * 1024 * 1024)), { code: 'MSB_ERR_FRAME_TOO_LARGE' });
});
