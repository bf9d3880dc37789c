/** What the fs streams need from the service that runs them. */

import type { ActivityMeter } from '../activity/meter.js';
import type { OutgoingMessage } from '../protocol/index.js';

export interface StreamOwner {
  send(id: number, message: OutgoingMessage): void;
  readonly meter: ActivityMeter;
  /** The stream sent its terminal response (or was aborted). */
  streamEnded(id: number): void;
}

/** The largest `data` of one `core.fs.data` (PROTOCOL §3.2). */
export const FS_CHUNK_SIZE = 3 * 1024 * 1024;
