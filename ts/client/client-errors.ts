/**
 * The errors a client raises for what the agent or the connection did: a `core.error` reply
 * becomes a ProtocolError with the wire `kind`; a lost connection becomes a TransportError
 * (MSB_ERR_TRANSPORT_CLOSED); a frame that makes no sense for its session is MSB_ERR_BAD_FRAME.
 */

import { ProtocolError, TransportError } from '../errors.js';
import { lookupMessageType, type CoreError, type CoreErrorKind, type MessageName } from '../protocol/index.js';

/** A `core.error` the agent answered a request with. Branch on `kind` (the wire vocabulary). */
export type AgentErrorReply = ProtocolError & {
  /** The wire `CoreErrorKind`: `invalid_session`, `invalid_payload`, … */
  readonly kind: CoreErrorKind;
  /** The wire type of the frame the agent refused, when it said. */
  readonly offendingType: string | null;
};

/**
 * `code` follows the layer the kind is about: the CBOR (`malformed_message`, `invalid_payload`:
 * MSB_ERR_BAD_CBOR), the type (`unsupported_message_type`, `unsupported_protocol_generation`:
 * MSB_ERR_UNKNOWN_MESSAGE), or a frame-header field (`invalid_flags`, and `invalid_session`, which
 * is about the id: MSB_ERR_BAD_FRAME).
 */
const CODE_OF_KIND: { readonly [K in CoreErrorKind]: string } = {
  malformed_message: 'MSB_ERR_BAD_CBOR',
  invalid_payload: 'MSB_ERR_BAD_CBOR',
  unsupported_message_type: 'MSB_ERR_UNKNOWN_MESSAGE',
  unsupported_protocol_generation: 'MSB_ERR_UNKNOWN_MESSAGE',
  invalid_flags: 'MSB_ERR_BAD_FRAME',
  invalid_session: 'MSB_ERR_BAD_FRAME',
};

/** The error for a `core.error` received on the id of `request` (a message name). */
export function fromCoreError(reply: CoreError, request: MessageName): AgentErrorReply {
  const wire = lookupMessageType(request).wire;
  const err = new ProtocolError(
    CODE_OF_KIND[reply.kind],
    `the agent refused ${wire} with core.error ${reply.kind}: ${reply.message}`,
  );
  return Object.assign(err, { kind: reply.kind, offendingType: reply.offendingType });
}

/** A terminal frame of a type that does not belong to the session on its id. */
export function unexpectedTerminal(received: MessageName, request: MessageName): ProtocolError {
  return new ProtocolError(
    'MSB_ERR_BAD_FRAME',
    `the agent ended a ${lookupMessageType(request).wire} session with an unexpected ${lookupMessageType(received).wire}`,
  );
}

/** The connection to the agent is gone (or was never there). */
export function transportClosed(message: string, cause?: unknown): TransportError {
  return new TransportError('MSB_ERR_TRANSPORT_CLOSED', message, cause === undefined ? undefined : { cause });
}
