/**
 * A serial character device as one long-lived peer. When the device reports EOF or hang-up (the
 * host side closed), it is reopened and the same connection, with its sessions, carries on: the
 * outer stream never ends. A `reopen` event tells the connection to drop any partial frame.
 */

import { Duplex } from 'node:stream';

import { openDeviceStream } from '../native/index.js';
import type { Logger } from '../log/logger.js';
import { nativeDuplex } from './fd-stream.js';

const REOPEN_DELAY_MS = 100;
const RETRY_DELAY_MS = 1000;

export function serialDuplex(path: string, log: Logger): Duplex {
  let current: Duplex | null = null;
  let stopped = false;
  let timer: NodeJS.Timeout | null = null;
  const outer = new Duplex({
    read() {
      current?.resume();
    },
    write(chunk: Buffer, _enc, cb) {
      // While the device is down, frames have nowhere to go; the host reconnects and retries.
      if (!current || current.destroyed) return cb();
      current.write(chunk, () => cb());
    },
    destroy(err, cb) {
      stopped = true;
      if (timer) clearTimeout(timer);
      current?.destroy();
      cb(err);
    },
  });
  const open = (): void => {
    timer = null;
    if (stopped) return;
    let d: Duplex;
    try {
      d = nativeDuplex((onEvent) => openDeviceStream(path, onEvent));
    } catch (err) {
      log.warn('cannot open the serial device, retrying', { path, error: (err as Error).message });
      timer = setTimeout(open, RETRY_DELAY_MS);
      return;
    }
    current = d;
    d.on('data', (c: Buffer) => {
      if (!outer.push(c)) d.pause();
    });
    d.on('error', (err) => log.debug('serial device error', { path, error: err.message }));
    d.on('close', () => {
      if (stopped || current !== d) return;
      current = null;
      log.info('serial device hung up; reopening', { path });
      outer.emit('reopen');
      timer = setTimeout(open, REOPEN_DELAY_MS);
    });
  };
  open();
  return outer;
}
