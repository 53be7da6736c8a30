/**
 * Message encryption for Web Push (RFC 8291) in the `aes128gcm` content coding (RFC 8188),
 * with WebCrypto only: ECDH P-256, HKDF-SHA-256, AES-128-GCM.
 *
 * The body is a single RFC 8188 record:
 *
 *     salt (16) | rs (uint32 BE, 4096) | idlen (1) = 65 | keyid = as_public (65) | AES-GCM(plaintext | 0x02 | 0x00*padding)
 */
import { b64uDecode, concat, utf8 } from "./bytes";
import { WebPushError } from "./errors";

/** The record size we declare (RFC 8188 `rs`). The whole message is one record no larger than this. */
export const RECORD_SIZE = 4096;
/** salt + rs + idlen + keyid (an uncompressed P-256 point). */
export const HEADER_SIZE = 16 + 4 + 1 + 65;
/** RFC 8291 §4: 4096 − 86 (header) − 1 (delimiter) − 16 (GCM tag). Plaintext plus padding must fit. */
export const MAX_PLAINTEXT = 4096 - HEADER_SIZE - 1 - 16;

export interface SubscriptionKeys {
  /** The user agent's ECDH public key: base64url, uncompressed P-256 point (65 bytes). */
  p256dh: string;
  /** The user agent's authentication secret: base64url, 16 bytes. */
  auth: string;
}

export interface EncryptOptions {
  keys: SubscriptionKeys;
  plaintext: Uint8Array;
  /** Extra zero octets after the 0x02 delimiter, to hide the plaintext's length. Default 0. */
  padding?: number;
  /** For test vectors only: a fixed 16-byte salt. Default: random. */
  salt?: Uint8Array;
  /** For test vectors only: a fixed sender (application server) ECDH key pair and its raw public key. Default: a fresh ephemeral pair. */
  sender?: { privateKey: CryptoKey; publicKey: Uint8Array };
}

/** Imports and checks a subscription's keys. Throws a descriptive Error if either is malformed. */
export async function importSubscriptionKeys(keys: SubscriptionKeys): Promise<{ uaPublic: Uint8Array<ArrayBuffer>; uaKey: CryptoKey; authSecret: Uint8Array<ArrayBuffer> }> {
  let uaPublic: Uint8Array<ArrayBuffer>;
  let authSecret: Uint8Array<ArrayBuffer>;
  try {
    uaPublic = b64uDecode(keys.p256dh);
    authSecret = b64uDecode(keys.auth);
  } catch {
    throw new WebPushError("push subscription keys are not base64url");
  }
  if (uaPublic.length !== 65 || uaPublic[0] !== 0x04) throw new WebPushError("push subscription p256dh is not an uncompressed P-256 point");
  if (authSecret.length !== 16) throw new WebPushError("push subscription auth secret is not 16 bytes");
  let uaKey: CryptoKey;
  try {
    uaKey = await crypto.subtle.importKey("raw", uaPublic, { name: "ECDH", namedCurve: "P-256" }, false, []);
  } catch {
    throw new WebPushError("push subscription p256dh is not a point on P-256");
  }
  return { uaPublic, uaKey, authSecret };
}

async function hkdf(salt: Uint8Array<ArrayBuffer>, ikm: Uint8Array<ArrayBuffer>, info: Uint8Array<ArrayBuffer>, bytes: number): Promise<Uint8Array<ArrayBuffer>> {
  const key = await crypto.subtle.importKey("raw", ikm, "HKDF", false, ["deriveBits"]);
  return new Uint8Array(await crypto.subtle.deriveBits({ name: "HKDF", hash: "SHA-256", salt, info }, key, bytes * 8));
}

/** Encrypts `plaintext` for one subscription. Returns the complete `aes128gcm` request body. */
export async function encryptAes128gcm(opts: EncryptOptions): Promise<Uint8Array<ArrayBuffer>> {
  const padding = opts.padding ?? 0;
  if (!Number.isInteger(padding) || padding < 0) throw new WebPushError("padding must be a non-negative integer");
  if (opts.plaintext.length + padding > MAX_PLAINTEXT) {
    throw new WebPushError(`push payload too large: ${opts.plaintext.length} bytes + ${padding} padding > ${MAX_PLAINTEXT}`);
  }
  const salt = opts.salt ? new Uint8Array(opts.salt) : crypto.getRandomValues(new Uint8Array(16));
  if (salt.length !== 16) throw new WebPushError("salt must be 16 bytes");

  const { uaPublic, uaKey, authSecret } = await importSubscriptionKeys(opts.keys);

  let sender = opts.sender;
  if (!sender) {
    const pair = (await crypto.subtle.generateKey({ name: "ECDH", namedCurve: "P-256" }, true, ["deriveBits"])) as CryptoKeyPair;
    sender = { privateKey: pair.privateKey, publicKey: new Uint8Array((await crypto.subtle.exportKey("raw", pair.publicKey)) as ArrayBuffer) };
  }
  const asPublic = new Uint8Array(sender.publicKey);
  if (asPublic.length !== 65) throw new WebPushError("sender public key must be an uncompressed P-256 point");

  // RFC 8291 §3.3–3.4. (Workers' types call the ECDH `public` member `$public`; the runtime wants `public`.)
  const ecdhParams = { name: "ECDH", public: uaKey } as unknown as Parameters<typeof crypto.subtle.deriveBits>[0];
  const ecdhSecret = new Uint8Array(await crypto.subtle.deriveBits(ecdhParams, sender.privateKey, 256));
  const keyInfo = concat(utf8("WebPush: info\0"), uaPublic, asPublic);
  const ikm = await hkdf(authSecret, ecdhSecret, keyInfo, 32);
  const cek = await hkdf(salt, ikm, utf8("Content-Encoding: aes128gcm\0"), 16);
  const nonce = await hkdf(salt, ikm, utf8("Content-Encoding: nonce\0"), 12);

  // RFC 8188 §2: the last (here the only) record ends its plaintext with 0x02, then zero padding.
  const record = new Uint8Array(opts.plaintext.length + 1 + padding);
  record.set(opts.plaintext, 0);
  record[opts.plaintext.length] = 0x02;

  const key = await crypto.subtle.importKey("raw", cek, { name: "AES-GCM" }, false, ["encrypt"]);
  // A single record: its sequence number is 0, so the nonce is used as derived.
  const ciphertext = new Uint8Array(await crypto.subtle.encrypt({ name: "AES-GCM", iv: nonce, tagLength: 128 }, key, record));

  const header = new Uint8Array(HEADER_SIZE);
  header.set(salt, 0);
  new DataView(header.buffer).setUint32(16, RECORD_SIZE, false);
  header[20] = asPublic.length;
  header.set(asPublic, 21);
  return concat(header, ciphertext);
}
