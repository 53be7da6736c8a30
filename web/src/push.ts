/**
 * Web Push opt-in: the service worker (public/sw.js) subscribes with the server's VAPID key
 * (from the SDK) and the subscription goes to the server through the SDK, for this device.
 */
import type { ChatClient } from "@edge-chat/sdk";

export type PushState = "unsupported" | "off" | "on" | "blocked" | "working";

export function pushSupported(): boolean {
  return typeof navigator !== "undefined" && "serviceWorker" in navigator && typeof window !== "undefined" && "PushManager" in window && "Notification" in window;
}

export function registerServiceWorker(): void {
  if (!("serviceWorker" in navigator)) return;
  navigator.serviceWorker.register("/sw.js", { scope: "/" }).catch((err) => console.warn("edge-chat: service worker not registered", err));
}

const flagKey = (deviceId: string) => `edge-chat:push:${deviceId}`;

function base64UrlToBytes(value: string): Uint8Array<ArrayBuffer> {
  const b64 = value.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(value.length / 4) * 4, "=");
  const raw = atob(b64);
  const out = new Uint8Array(new ArrayBuffer(raw.length));
  for (let i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
  return out;
}

function sameKey(sub: PushSubscription, key: Uint8Array): boolean {
  const have = sub.options.applicationServerKey;
  if (!have) return false;
  const a = new Uint8Array(have);
  return a.length === key.length && a.every((b, i) => b === key[i]);
}

/** Whether this device is subscribed (permission granted, a subscription, and sent to the server from this device). */
export async function currentPushState(chat: ChatClient): Promise<PushState> {
  if (!pushSupported()) return "unsupported";
  if (Notification.permission === "denied") return "blocked";
  if (Notification.permission !== "granted") return "off";
  const reg = await navigator.serviceWorker.getRegistration("/");
  const sub = await reg?.pushManager.getSubscription();
  return sub && localStorage.getItem(flagKey(chat.deviceId)) === "on" ? "on" : "off";
}

export async function enablePush(chat: ChatClient): Promise<PushState> {
  if (!pushSupported()) return "unsupported";
  const permission = await Notification.requestPermission();
  if (permission !== "granted") return permission === "denied" ? "blocked" : "off";
  const reg = (await navigator.serviceWorker.getRegistration("/")) ?? (await navigator.serviceWorker.register("/sw.js", { scope: "/" }));
  await navigator.serviceWorker.ready;
  const key = base64UrlToBytes(await chat.push.vapidPublicKey());
  let sub = await reg.pushManager.getSubscription();
  if (sub && !sameKey(sub, key)) {
    await sub.unsubscribe();
    sub = null;
  }
  sub ??= await reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key });
  await chat.push.subscribe(sub.toJSON());
  localStorage.setItem(flagKey(chat.deviceId), "on");
  return "on";
}

export async function disablePush(chat: ChatClient): Promise<PushState> {
  localStorage.removeItem(flagKey(chat.deviceId));
  await chat.push.unsubscribe().catch(() => undefined);
  const reg = await navigator.serviceWorker.getRegistration("/");
  await (await reg?.pushManager.getSubscription())?.unsubscribe();
  return "off";
}
