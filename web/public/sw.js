/*
 * The app's service worker: Web Push only (no offline caching). A push names a
 * conversation and a seq, never the content (CONTRACT.md section 8): the notification
 * says a message arrived (or a call rings) and opens that conversation when clicked.
 */
self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));

self.addEventListener("push", (event) => {
  let data = {};
  try {
    data = event.data ? event.data.json() : {};
  } catch {
    data = {};
  }
  const conversationId = typeof data.conversation_id === "string" ? data.conversation_id : null;
  const url = conversationId ? `/c/${encodeURIComponent(conversationId)}` : "/";
  event.waitUntil(
    (async () => {
      // Someone looking at the app already sees the message.
      const windows = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
      if (windows.some((w) => w.visibilityState === "visible" && w.focused)) return;
      // A call rings (CONTRACT.md section 11): {"type":"call","conversation_id","call_id"}.
      const call = data.type === "call";
      // A media message's push says so ({"kind":"media"}), still without its content or type.
      const media = data.kind === "media";
      await self.registration.showNotification(call ? "Incoming call" : media ? "📎 New attachment" : "New message", {
        body: call ? "Open edge-chat to answer." : media ? "Open edge-chat to see it." : "Open edge-chat to read it.",
        icon: "/icon.svg",
        badge: "/icon.svg",
        // One notification per conversation: a repeat (pushes are at least once) replaces it.
        tag: call ? `call:${typeof data.call_id === "string" ? data.call_id : conversationId ?? ""}` : (conversationId ?? "edge-chat"),
        renotify: true,
        requireInteraction: call,
        data: { url },
      });
    })(),
  );
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const url = (event.notification.data && event.notification.data.url) || "/";
  event.waitUntil(
    (async () => {
      const windows = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
      for (const w of windows) {
        if (new URL(w.url).origin === self.location.origin) {
          await w.focus();
          w.postMessage({ type: "open", url });
          return;
        }
      }
      await self.clients.openWindow(url);
    })(),
  );
});
