// ColonyOS crypto in the browser, byte for byte what the Python SDK does (pycolonies/crypto.py,
// wire.py, rpc.py; ../shared/protocol.md §3):
//   hash       SHA3-256 (FIPS 202, not Keccak)
//   curve      secp256k1, deterministic RFC 6979 nonces (HMAC-SHA256), low-S
//   ID         sha3_256 of the 130-char lowercase hex of the uncompressed public key (04||X||Y)
//   signature  65 bytes r||s||v in hex, v = recovery id 0/1, over sha3_256 of the ASCII of the
//              base64 payload string (no further hashing)
//   envelope   {"signature", "payloadtype", "payload"}, payload = standard base64 (with padding)
//              of the UTF-8 JSON text; signed messages carry requestnonce and requesttime.
//
// Only the vendored, audited noble libraries are used, and only their synchronous paths: the page
// may be served over plain http from a non-localhost address, where crypto.subtle does not exist.
// crypto.getRandomValues (available in every context) supplies the request nonces.

import * as secp from '../vendor/noble-secp256k1-3.2.0/index.js';
import { hmac } from '../vendor/noble-hashes-2.4.0/hmac.js';
import { sha256 } from '../vendor/noble-hashes-2.4.0/sha2.js';
import { sha3_256 } from '../vendor/noble-hashes-2.4.0/sha3.js';

// The synchronous hooks noble-secp256k1 needs for sign() (RFC 6979 uses HMAC-SHA256).
secp.hashes.sha256 = sha256;
secp.hashes.hmacSha256 = (key, message) => hmac(sha256, key, message);

const CURVE_N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
const PRIVATE_KEY_RE = /^[0-9a-fA-F]{64}$/;
const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8', { fatal: true });

function toHex(bytes) {
  let out = '';
  for (const b of bytes) out += b.toString(16).padStart(2, '0');
  return out;
}

function fromHex(hex) {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** The private key as 32 bytes, or an Error saying what is wrong with it (never the key itself). */
function privateKeyBytes(privateKeyHex) {
  if (typeof privateKeyHex !== 'string') {
    throw new Error('Invalid private key: expected a string of 64 hex characters');
  }
  const hex = privateKeyHex.trim();
  if (!PRIVATE_KEY_RE.test(hex)) {
    throw new Error(`Invalid private key: expected 64 hex characters, got ${hex.length} characters` +
      (hex.length === 64 ? ' with non-hex ones' : ''));
  }
  const d = BigInt('0x' + hex);
  if (d === 0n || d >= CURVE_N) {
    throw new Error('Invalid private key: it must be a number between 1 and the secp256k1 order n - 1');
  }
  return fromHex(hex.toLowerCase());
}

/** Lowercase hex SHA3-256 of the UTF-8 bytes of `text`. */
export function sha3hex(text) {
  return toHex(sha3_256(utf8.encode(String(text))));
}

/** The ColonyOS ID (64 hex) of a private key: sha3 of the uncompressed public key's hex text. */
export function idFromPrivateKey(privateKeyHex) {
  const publicKey = secp.getPublicKey(privateKeyBytes(privateKeyHex), false);
  return sha3hex(toHex(publicKey));
}

/** The 130-hex signature r||s||v (v 0/1, low S) of the base64 payload string. */
export function signPayload(payloadBase64, privateKeyHex) {
  if (typeof payloadBase64 !== 'string') throw new Error('signPayload: the payload must be a base64 string');
  const key = privateKeyBytes(privateKeyHex);
  const digest = sha3_256(utf8.encode(payloadBase64));
  // 'recovered' is v||r||s in noble-secp256k1 3.x; the wire wants r||s||v.
  const recovered = secp.sign(digest, key, { prehash: false, lowS: true, format: 'recovered' });
  const wire = new Uint8Array(65);
  wire.set(recovered.subarray(1, 65), 0);
  wire[64] = recovered[0];
  return toHex(wire);
}

function bytesToBase64(bytes) {
  let binary = '';
  const chunk = 0x8000;
  for (let i = 0; i < bytes.length; i += chunk) {
    binary += String.fromCharCode.apply(null, bytes.subarray(i, i + chunk));
  }
  return btoa(binary);
}

function base64ToBytes(b64) {
  const binary = atob(b64);
  const out = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
  return out;
}

/** Standard base64 (with padding) of the UTF-8 JSON text of `obj`. */
export function encodePayload(obj) {
  const text = JSON.stringify(obj);
  if (text === undefined) throw new Error('encodePayload: the value has no JSON form');
  return bytesToBase64(utf8.encode(text));
}

/** The JSON value of a base64 payload; an empty payload is null. Throws on bad base64 or JSON. */
export function decodePayload(b64) {
  if (typeof b64 !== 'string') throw new Error('decodePayload: the payload is not a base64 string');
  if (b64 === '') return null;
  let bytes;
  try {
    bytes = base64ToBytes(b64);
  } catch {
    throw new Error('decodePayload: the payload is not valid base64');
  }
  return JSON.parse(utf8Decoder.decode(bytes));
}

/** 16 random bytes as 32 hex chars (crypto.getRandomValues, which plain http pages have too). */
function requestNonce() {
  return toHex(crypto.getRandomValues(new Uint8Array(16)));
}

/** Unix time in ns as a Number: past 2^53 it is rounded (to 256 ns), which a time can afford; its
 *  JSON text is a plain integer (exponent form starts only at 1e21). */
function requestTime() {
  const ns = Date.now() * 1_000_000;
  if (!Number.isInteger(ns) || ns >= 1e21) throw new Error('requestTime: the clock is out of range');
  return ns;
}

/** The signed request envelope for `msg` (which must carry msgtype), as the SDK's
 *  rpc.request_envelope: a fresh requestnonce and requesttime go into the signed payload. */
export function signedEnvelope(msg, privateKeyHex) {
  if (msg === null || typeof msg !== 'object' || typeof msg.msgtype !== 'string' || msg.msgtype === '') {
    throw new Error('signedEnvelope: the message must be an object with a msgtype');
  }
  const fresh = { ...msg, requestnonce: requestNonce(), requesttime: requestTime() };
  const payload = encodePayload(fresh);
  return { signature: signPayload(payload, privateKeyHex), payloadtype: msg.msgtype, payload };
}
