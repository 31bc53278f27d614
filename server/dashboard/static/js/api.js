// A tiny client for the page's own server: signed calls to POST /api and subscriptions on the
// /pubsub websocket, as the Python SDK makes them (pycolonies/rpc.py, pubsub.py).
//
// The private key stays in the Api object: it signs here and is never sent anywhere.

import { decodePayload, idFromPrivateKey, signedEnvelope } from './crypto.js';

/** A failed call: `status` is the server's (or the HTTP) status, 0 when nothing was received. */
export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
  }
}

/** The decoded payload of a reply envelope, or an ApiError the envelope (or its absence) describes
 *  (the shape pycolonies.rpc.decode_reply reads: {"payloadtype","payload","error"}, an error's
 *  payload being {"status": int, "message": str}). */
function decodeReply(text, httpStatus) {
  let envelope;
  try {
    envelope = JSON.parse(text);
  } catch {
    envelope = null;
  }
  if (envelope === null || typeof envelope !== 'object' || !('payload' in envelope)) {
    throw new ApiError(httpStatus, `invalid reply (HTTP ${httpStatus}), not a Colonies reply envelope: ` +
      JSON.stringify(String(text).slice(0, 200)));
  }
  let payload;
  try {
    payload = decodePayload(envelope.payload ?? '');
  } catch (err) {
    throw new ApiError(httpStatus, `invalid reply payload (HTTP ${httpStatus}): ${err.message}`);
  }
  if (envelope.error) {
    let status = payload?.status;
    let message = payload?.message;
    if (!Number.isInteger(status)) status = httpStatus;
    if (typeof message !== 'string') message = `server error (HTTP ${httpStatus})`;
    throw new ApiError(status, message);
  }
  if (httpStatus >= 400) {
    throw new ApiError(httpStatus, `unexpected HTTP ${httpStatus} without an error flag`);
  }
  return payload;
}

export class Api {
  #privateKey;

  /** Throws an Error (never an ApiError) if the key is not a valid secp256k1 private key. */
  constructor(privateKeyHex) {
    this.id = idFromPrivateKey(privateKeyHex); // validates the key
    this.#privateKey = privateKeyHex.trim().toLowerCase();
  }

  /** POST the signed `msg` (with its msgtype) to /api; the decoded reply payload, or ApiError. */
  async call(msg) {
    const body = JSON.stringify(signedEnvelope(msg, this.#privateKey));
    let response;
    try {
      response = await fetch('/api', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
        body,
        credentials: 'omit',
        cache: 'no-store',
      });
    } catch (err) {
      throw new ApiError(0, `cannot reach the server: ${err.message}`);
    }
    return decodeReply(await response.text(), response.status);
  }

  /** Open /pubsub on this host, send the signed `msg` (e.g. a subscribeprocessmsg) as one text
   *  frame, and call onMessage(payload) with each event's decoded payload. onClose(error) is called
   *  once when the subscription ends: with null when the server closes it (its timeout) or close()
   *  was called, with an ApiError for an error envelope, a bad frame or a failed connection.
   *  Returns {close(), opened}: `opened` resolves once the request frame has been sent. */
  subscribe(msg, onMessage, onClose = () => {}) {
    const envelope = JSON.stringify(signedEnvelope(msg, this.#privateKey));
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const socket = new WebSocket(`${scheme}//${location.host}/pubsub`);
    let ended = false;
    let markOpened;
    const opened = new Promise((resolve) => { markOpened = resolve; });
    const end = (error) => {
      if (ended) return;
      ended = true;
      if (socket.readyState === WebSocket.CONNECTING || socket.readyState === WebSocket.OPEN) socket.close();
      onClose(error);
    };
    socket.addEventListener('open', () => {
      socket.send(envelope);
      markOpened();
    });
    socket.addEventListener('message', (event) => {
      if (ended) return;
      if (typeof event.data !== 'string') {
        end(new ApiError(0, 'unexpected binary frame on /pubsub'));
        return;
      }
      let payload;
      try {
        payload = decodeReply(event.data, 200);
      } catch (err) {
        end(err instanceof ApiError ? err : new ApiError(0, err.message));
        return;
      }
      onMessage(payload);
    });
    socket.addEventListener('error', () => end(new ApiError(0, 'the /pubsub connection failed')));
    socket.addEventListener('close', () => end(null));
    return { close: () => end(null), opened };
  }
}
