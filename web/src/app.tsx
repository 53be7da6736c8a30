/**
 * The app shell: the sign-in screen, or the two panes (list and chat). On a wide screen both
 * panes show side by side; on a phone one at a time, the chat over the list. The open
 * conversation is in the URL (/c/ID), so reload, Back and links from notifications work.
 */
import { useEffect } from "preact/hooks";
import { AuthScreen } from "./auth";
import { CallOverlay } from "./call";
import { ChatView } from "./chat";
import { Sidebar } from "./sidebar";
import { useModel } from "./ui";

export function conversationFromPath(path: string): string | null {
  const m = path.match(/^\/c\/([^/]+)\/?$/);
  return m ? decodeURIComponent(m[1]!) : null;
}

export function App() {
  const model = useModel();

  useEffect(() => {
    const onPop = () => model.openConversation(conversationFromPath(location.pathname));
    window.addEventListener("popstate", onPop);
    // A notification clicked while the app was open (public/sw.js).
    const onWorker = (e: MessageEvent) => {
      if (e.data?.type === "open" && typeof e.data.url === "string") navigate(e.data.url);
    };
    navigator.serviceWorker?.addEventListener("message", onWorker);
    return () => {
      window.removeEventListener("popstate", onPop);
      navigator.serviceWorker?.removeEventListener("message", onWorker);
    };
  }, [model]);

  // Signed in: show the conversation the URL names.
  useEffect(() => {
    if (model.phase === "ready") model.openConversation(conversationFromPath(location.pathname));
  }, [model.phase]);

  function navigate(url: string) {
    if (location.pathname !== url) history.pushState(null, "", url);
    model.openConversation(conversationFromPath(url));
  }

  if (model.phase === "loading") {
    return (
      <div class="splash" role="status">
        <img src="/icon.svg" alt="" width={56} height={56} />
        <span>Loading…</span>
      </div>
    );
  }
  if (model.phase === "signed-out") return <AuthScreen />;

  const open = model.openId;
  return (
    <div class={`app ${open ? "chat-open" : "list-open"}`}>
      {open && (
        <a class="skip-link" href="#composer-input">
          Skip to the message box
        </a>
      )}
      <Sidebar onOpen={(id) => navigate(`/c/${encodeURIComponent(id)}`)} />
      <main class="chat-pane" aria-label="Conversation">
        {open ? (
          <ChatView key={open} id={open} onBack={() => navigate("/")} />
        ) : (
          <div class="no-chat">
            <img src="/icon.svg" alt="" width={72} height={72} />
            <h2>edge-chat</h2>
            <p class="muted">Pick a conversation, or start a new one.</p>
          </div>
        )}
      </main>
      <CallOverlay />
    </div>
  );
}
