/** Opaque identifiers: a short type prefix and 128 random bits, base32 so they stay URL-safe. */
const ALPHABET = "abcdefghijklmnopqrstuvwxyz234567";

function base32(bytes: Uint8Array): string {
  let bits = 0;
  let value = 0;
  let out = "";
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += ALPHABET[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += ALPHABET[(value << (5 - bits)) & 31];
  return out;
}

export const newId = (prefix: "u" | "d" | "g" | "m" | "md" | "mu"): string =>
  `${prefix}_${base32(crypto.getRandomValues(new Uint8Array(16)))}`;

/** The one id a pair of users' direct conversation can have, whoever creates it first. */
export async function directConversationId(a: string, b: string): Promise<string> {
  const key = directKey(a, b);
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(key));
  return `c_${base32(new Uint8Array(digest).slice(0, 16))}`;
}

export const directKey = (a: string, b: string): string => (a < b ? `${a}:${b}` : `${b}:${a}`);

/** Conversation ids are `g_…` (group) or `c_…` (direct); anything else is not one of ours. */
export const isConversationId = (s: string): boolean => /^(g|c)_[a-z2-7]{26}$/.test(s);
