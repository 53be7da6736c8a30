/** The left pane: who you are, new chats and groups, notifications, the conversation list. */
import type { ComponentChildren, Ref } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { decodeMediaContent, type ConversationSummary } from "@edge-chat/sdk";
import { callLabel, shortWhen } from "./format";
import { describeError } from "./model";
import { PrivacyPanel } from "./privacy";
import { currentPushState, disablePush, enablePush, type PushState } from "./push";
import { Avatar, Icon, useModel } from "./ui";

type Panel = "direct" | "group" | "privacy" | null;

export function Sidebar(props: { onOpen: (id: string) => void }) {
  const model = useModel();
  const [panel, setPanel] = useState<Panel>(null);
  const me = model.chat ? model.users.get(model.chat.userId) : undefined;
  // "connecting" alone is the header's business (every start goes through it); the banner is for real outages.
  const offline = !model.online || model.connection === "disconnected" || model.connection === "failed";

  return (
    <aside class="sidebar" aria-label="Conversations">
      <header class="bar">
        {me && <Avatar id={me.user_id} name={me.display_name || me.handle} size="sm" />}
        <div class="who">
          <strong data-testid="me-handle">{me ? me.display_name || me.handle : ""}</strong>
          <span class={`conn ${model.online ? model.connection : "disconnected"}`} role="status" data-testid="connection-state">
            {!model.online ? "Offline" : model.connection === "connected" ? `@${me?.handle ?? ""}` : model.connection === "connecting" ? "Connecting…" : "Offline"}
          </span>
        </div>
        <button
          class="icon-button"
          data-testid="new-direct"
          aria-label="New chat"
          title="New chat"
          aria-expanded={panel === "direct"}
          aria-controls="new-direct-panel"
          onClick={() => setPanel(panel === "direct" ? null : "direct")}
        >
          <Icon name="edit" />
        </button>
        <button
          class="icon-button"
          data-testid="new-group"
          aria-label="New group"
          title="New group"
          aria-expanded={panel === "group"}
          aria-controls="new-group-panel"
          onClick={() => setPanel(panel === "group" ? null : "group")}
        >
          <Icon name="group" />
        </button>
        <PushToggle />
        <button
          class={`icon-button ${panel === "privacy" ? "active" : ""}`}
          data-testid="privacy-open"
          aria-label="Privacy and blocked users"
          title="Privacy"
          aria-expanded={panel === "privacy"}
          aria-controls="privacy-panel"
          onClick={() => setPanel(panel === "privacy" ? null : "privacy")}
        >
          <Icon name="shield" />
        </button>
        <button class="icon-button" data-testid="logout" aria-label="Sign out" title="Sign out" onClick={() => void model.logout()}>
          <Icon name="logout" />
        </button>
      </header>
      {offline && model.phase === "ready" && (
        <p class="offline-banner" role="status">
          You are offline. Messages you send will go out when you are back.
        </p>
      )}
      {panel === "direct" && (
        <NewDirect
          onDone={(id) => {
            setPanel(null);
            if (id) props.onOpen(id);
          }}
        />
      )}
      {panel === "group" && (
        <NewGroup
          onDone={(id) => {
            setPanel(null);
            if (id) props.onOpen(id);
          }}
        />
      )}
      {panel === "privacy" && <PrivacyPanel onClose={() => setPanel(null)} />}
      <ConversationList onOpen={props.onOpen} />
    </aside>
  );
}

/**
 * A side panel's form: focus on open, Escape closes, one submit at a time, and the
 * error of a failed one shown (and announced) under it.
 */
function PanelForm(props: {
  id: string;
  label: string;
  onDone: (id: string | null) => void;
  submit: () => Promise<string | null>;
  children: (state: { busy: boolean; firstInput: Ref<HTMLInputElement> }) => ComponentChildren;
}) {
  const model = useModel();
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const firstInput = useRef<HTMLInputElement>(null);
  useEffect(() => firstInput.current?.focus(), []);
  return (
    <form
      id={props.id}
      class="panel"
      aria-label={props.label}
      onSubmit={async (e) => {
        e.preventDefault();
        setBusy(true);
        setError(null);
        try {
          props.onDone(await props.submit());
        } catch (err) {
          // A 403 names who refused (section 17: add_to_groups): by their name, not their id.
          setError(model.explain(err));
          setBusy(false);
        }
      }}
      onKeyDown={(e) => e.key === "Escape" && props.onDone(null)}
    >
      {props.children({ busy, firstInput })}
      {error && (
        <p class="form-error" role="alert">
          {error}
        </p>
      )}
    </form>
  );
}

function NewDirect(props: { onDone: (id: string | null) => void }) {
  const model = useModel();
  const [handle, setHandle] = useState("");
  return (
    <PanelForm id="new-direct-panel" label="New chat" onDone={props.onDone} submit={() => model.startDirect(handle)}>
      {({ busy, firstInput }) => (
        <>
          <label for="new-direct-handle">Start a chat with</label>
          <div class="row">
            <input
              ref={firstInput}
              id="new-direct-handle"
              data-testid="new-direct-handle"
              placeholder="handle"
              autocapitalize="none"
              spellcheck={false}
              autocomplete="off"
              value={handle}
              onInput={(e) => setHandle(e.currentTarget.value)}
            />
            <button type="submit" class="primary" data-testid="new-direct-start" disabled={busy}>
              {busy ? "…" : "Start chat"}
            </button>
          </div>
        </>
      )}
    </PanelForm>
  );
}

function NewGroup(props: { onDone: (id: string | null) => void }) {
  const model = useModel();
  const [name, setName] = useState("");
  const [members, setMembers] = useState("");
  return (
    <PanelForm id="new-group-panel" label="New group" onDone={props.onDone} submit={() => model.createGroup(name, members.split(/[\s,]+/))}>
      {({ busy, firstInput }) => (
        <>
          <label for="new-group-name">Group name</label>
          <input ref={firstInput} id="new-group-name" data-testid="new-group-name" required maxLength={100} value={name} onInput={(e) => setName(e.currentTarget.value)} />
          <label for="new-group-members">Members</label>
          <input
            id="new-group-members"
            data-testid="new-group-members"
            placeholder="handles, separated by commas"
            autocapitalize="none"
            spellcheck={false}
            autocomplete="off"
            aria-describedby="new-group-members-hint"
            value={members}
            onInput={(e) => setMembers(e.currentTarget.value)}
          />
          <small id="new-group-members-hint" class="hint">
            For example: alice, bob
          </small>
          <div class="row end">
            <button type="button" class="secondary" onClick={() => props.onDone(null)}>
              Cancel
            </button>
            <button type="submit" class="primary" data-testid="new-group-create" disabled={busy}>
              {busy ? "Creating…" : "Create group"}
            </button>
          </div>
        </>
      )}
    </PanelForm>
  );
}

function PushToggle() {
  const model = useModel();
  const chat = model.chat;
  const [state, setState] = useState<PushState>("off");
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    if (chat) void currentPushState(chat).then(setState, () => setState("unsupported"));
  }, [chat]);
  if (!chat || state === "unsupported") return null;
  const on = state === "on";
  const label = state === "blocked" ? "Notifications are blocked in this browser" : on ? "Turn notifications off" : "Turn notifications on";
  return (
    <button
      class={`icon-button ${on ? "active" : ""}`}
      data-testid="push-toggle"
      aria-label={error ? `${label} (${error})` : label}
      title={error ?? label}
      aria-pressed={on}
      disabled={state === "working" || state === "blocked"}
      onClick={async () => {
        setError(null);
        setState("working");
        try {
          setState(on ? await disablePush(chat) : await enablePush(chat));
        } catch (err) {
          setError(describeError(err));
          setState(on ? "on" : "off");
        }
      }}
    >
      <Icon name={on ? "bell" : "bellOff"} />
    </button>
  );
}

function ConversationList(props: { onOpen: (id: string) => void }) {
  const model = useModel();
  const list = model.sortedConversations();
  if (model.listLoaded && list.length === 0) {
    return (
      <div class="empty-list">
        <p>No conversations yet.</p>
        <p class="muted">Start one with the pencil button above.</p>
      </div>
    );
  }
  return (
    <nav class="conversations" aria-label="Conversation list">
      <ul role="list">
        {list.map((c) => (
          <li key={c.conversation_id}>
            <ConversationItem c={c} open={model.openId === c.conversation_id} onOpen={props.onOpen} />
          </li>
        ))}
      </ul>
    </nav>
  );
}

function ConversationItem(props: { c: ConversationSummary; open: boolean; onOpen: (id: string) => void }) {
  const model = useModel();
  const { c } = props;
  const title = model.titleOf(c);
  const peer = model.peerOf(c);
  // No dot for a peer whose presence is hidden from us (section 17: status "unknown").
  const status = peer ? model.presence.get(peer)?.status : undefined;
  const online = peer && status !== "unknown" ? status === "online" : undefined;
  const typing = model.typingIn(c.conversation_id);
  const last = c.last_message;
  const mine = last && last.sender_id === model.chat?.userId;
  const preview = typing.length
    ? "typing…"
    : last
      ? last.kind === "call"
        ? `📞 ${previewText(last)}`
        : `${mine ? "You: " : c.type === "group" ? `${model.nameOf(last.sender_id)}: ` : ""}${previewText(last)}`
      : c.type === "group"
        ? `${c.members.length} members`
        : "No messages yet";
  const unread = c.unread_count;
  const request = model.isRequest(c);
  const label = [title, request ? "message request" : null, online ? "online" : null, unread ? `${unread} unread` : null, preview].filter(Boolean).join(", ");
  return (
    <button
      class={`conversation ${props.open ? "open" : ""} ${unread ? "has-unread" : ""}`}
      data-testid="conversation-item"
      data-conversation-id={c.conversation_id}
      aria-current={props.open ? "true" : undefined}
      aria-label={label}
      onClick={() => props.onOpen(c.conversation_id)}
    >
      <Avatar id={peer ?? c.conversation_id} name={title} online={online} group={c.type === "group"} />
      <span class="conv-main">
        <span class="conv-top">
          <span class="conv-title" data-testid="conversation-title">
            {title}
          </span>
          {request && (
            <span class="tag" data-testid="request-tag" aria-hidden="true">
              Request
            </span>
          )}
          {last && <time class="conv-time">{shortWhen(last.created_at)}</time>}
        </span>
        <span class="conv-bottom">
          <span class={`conv-preview ${typing.length ? "is-typing" : ""}`}>{preview}</span>
          {unread > 0 && (
            <span class="badge" data-testid="unread-badge" aria-hidden="true">
              {unread}
            </span>
          )}
        </span>
      </span>
    </button>
  );
}

function previewText(m: { kind: string; text?: string; content?: string; deleted?: boolean; media?: { type?: string; caption?: string; name?: string } }): string {
  if (m.deleted) return "Message deleted";
  if (m.kind === "text") return m.text ?? "";
  if (m.kind === "media" || m.media) {
    const media = m.media ?? decodeMediaContent(m.content ?? "");
    return media.type?.startsWith("image/") ? `📷 ${media.caption ?? "Photo"}` : `📎 ${media.caption ?? media.name ?? "Attachment"}`;
  }
  if (m.kind === "encrypted") return m.text ?? "🔒 Encrypted message";
  if (m.kind === "call") return callLabel(m.content);
  return "";
}
