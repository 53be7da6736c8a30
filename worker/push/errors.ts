/** Thrown for a malformed subscription, key, option or payload; `message` says which and is safe to return to a client. */
export class WebPushError extends Error {
  override name = "WebPushError";
}
