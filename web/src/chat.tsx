/** The right pane: one conversation — history paged on scroll, live messages, ticks, typing, the composer. */
import { Fragment } from "preact";
import { useEffect, useLayoutEffect, useRef, useState } from "preact/hooks";
import type { ChatMessage } from "@edge-chat/sdk";
import { clock, dayLabel, lastSeen, sameDay } from "./format";
import type { PendingSend } from "./model";
import { CallButtons, CallEntry } from "./call";
import { BlockButton, BlockedBar, RequestBanner } from "./privacy";
import { EncryptionLock } from "./security";
import { MediaBody, UploadRows } from "./media";
import { Avatar, Icon, Ticks, useModel } from "./ui";

/** Unsent drafts per conversation, for the session. */
const drafts = new Map<string, string>();
/** Load older messages when scrolled within this many pixels of the top. */
const TOP_THRESHOLD = 120;

export function ChatView(props: { id: string; onBack: () => void }) {
  const model = useModel();
  const { id } = props;
  const c = model.conversations.get(id);
  const me = model.chat?.userId;
  const messages = (model.messages.get(id) ?? []).filter(shown);
  const loaded = model.messages.has(id);
  const pending = model.pendingFor(id);
  const hasOlder = model.hasOlder.get(id) ?? false;
  const loadingOlder = model.loadingOlder.has(id);
  const title = c ? model.titleOf(c) : "…";
  const peer = c ? model.peerOf(c) : null;
  const typing = model.typingIn(id).filter((u) => u !== me);
  const blocked = model.isBlocked(peer);
  const request = c !== undefined && peer !== null && !blocked && model.isRequest(c);

  const list = useRef<HTMLDivElement>(null);
  const stick = useRef(true);
  const prepend = useRef<{ height: number; top: number; first: number | undefined } | null>(null);
  const composer = useRef<HTMLTextAreaElement>(null);

  // A new conversation on screen: start at the bottom; focus the composer, except on phones
  // (where focus opens the keyboard over the messages).
  useEffect(() => {
    stick.current = true;
    prepend.current = null;
    if (matchMedia("(min-width: 760px)").matches) composer.current?.focus({ preventScroll: true });
  }, [id]);

  const first = messages[0]?.seq;
  const count = messages.length + pending.length;
  useLayoutEffect(() => {
    const el = list.current;
    if (!el) return;
    const snap = prepend.current;
    if (snap && snap.first !== first) {
      // Older messages went in above: keep what the reader was looking at in place.
      el.scrollTop = el.scrollHeight - snap.height + snap.top;
      prepend.current = null;
    } else if (stick.current) {
      el.scrollTop = el.scrollHeight;
    }
    // Not enough to scroll yet: fetch more so that scrolling up can page.
    if (loaded && hasOlder && !loadingOlder && el.scrollHeight <= el.clientHeight + 8) older();
  }, [id, count, first, loaded, typing.length]);

  function older() {
    const el = list.current;
    if (!el || !hasOlder || loadingOlder) return;
    prepend.current = { height: el.scrollHeight, top: el.scrollTop, first };
    void model.loadOlder(id);
  }

  function onScroll() {
    const el = list.current;
    if (!el) return;
    stick.current = el.scrollHeight - el.scrollTop - el.clientHeight < 48;
    if (el.scrollTop < TOP_THRESHOLD) older();
    if (stick.current) model.markOpenRead();
  }

  const presence = peer ? model.presence.get(peer) : undefined;
  const subtitle = typing.length
    ? "typing…"
    : c?.type === "group"
      ? c.members.map((m) => (m.user_id === me ? "you" : model.nameOf(m.user_id))).join(", ")
      : presence?.status === "online"
        ? "online"
        : presence
          ? presence.status === "unknown"
            ? ""
            : lastSeen(presence.last_seen)
          : "";

  return (
    <section class="chat" aria-labelledby="chat-title" data-conversation-id={id}>
      <header class="bar chat-bar">
        <button class="icon-button back" onClick={props.onBack} aria-label="Back to conversations" data-testid="back">
          <Icon name="back" />
        </button>
        <Avatar id={peer ?? id} name={title} online={peer ? presence?.status === "online" : undefined} group={c?.type === "group"} />
        <div class="who">
          <h2 id="chat-title">{title}</h2>
          <span class="subtitle" data-testid="chat-subtitle">
            {subtitle}
          </span>
        </div>
        <EncryptionLock id={id} encrypted={(c as { encryption?: string } | undefined)?.encryption === "mls"} />
        {/* No calling someone one has blocked (they could not answer by message either). */}
        <CallButtons id={id} peer={blocked ? null : peer} name={title} />
        <BlockButton peer={peer} name={title} />
      </header>
      {request && <RequestBanner id={id} peer={peer!} name={title} onAccept={() => composer.current?.focus()} />}
      <div class="messages" ref={list} onScroll={onScroll} role="log" aria-label={`Messages with ${title}`} aria-busy={!loaded || loadingOlder} tabIndex={0} data-testid="message-list">
        {hasOlder && (
          <button class="load-older" onClick={older} disabled={loadingOlder} data-testid="load-older">
            {loadingOlder ? "Loading…" : "Load older messages"}
          </button>
        )}
        {loaded && !hasOlder && messages.length > 0 && <p class="history-start">Beginning of the conversation</p>}
        {!loaded && <p class="history-start">Loading…</p>}
        {loaded && messages.length === 0 && pending.length === 0 && <p class="history-start">No messages yet. Say hello!</p>}
        {messages.map((m, i) => {
          const prev = messages[i - 1];
          const newDay = !prev || !sameDay(prev.created_at, m.created_at);
          const grouped = !newDay && prev?.kind !== "call" && prev?.sender_id === m.sender_id && m.created_at - prev.created_at < 5 * 60_000;
          return (
            <Fragment key={m.seq}>
              {newDay && <DaySeparator t={m.created_at} />}
              {m.kind === "call" && !m.deleted ? (
                <CallEntry m={m} mine={m.sender_id === me} />
              ) : (
                <MessageRow m={m} mine={m.sender_id === me} group={c?.type === "group"} grouped={grouped} />
              )}
            </Fragment>
          );
        })}
        {pending.map((p) => (
          <PendingRow key={p.client_message_id} p={p} />
        ))}
        <UploadRows id={id} />
      </div>
      {typing.length > 0 && (
        <div class="typing" data-testid="typing-indicator" role="status" aria-live="polite">
          <span class="dots" aria-hidden="true">
            <i />
            <i />
            <i />
          </span>
          {typing.map((u) => model.nameOf(u)).join(", ")} {typing.length > 1 ? "are" : "is"} typing…
        </div>
      )}
      {blocked ? (
        <BlockedBar peer={peer!} name={title} />
      ) : (
        <Composer
          id={id}
          inputRef={composer}
          onSend={(text) => {
            stick.current = true;
            model.send(id, text);
          }}
        />
      )}
    </section>
  );
}

function shown(m: ChatMessage): boolean {
  return m.kind === "text" || m.kind === "media" || m.kind === "encrypted" || m.kind === "call";
}

function DaySeparator(props: { t: number }) {
  return (
    <div class="day" role="separator">
      <span>{dayLabel(props.t)}</span>
    </div>
  );
}

function MessageRow(props: { m: ChatMessage; mine: boolean; group: boolean; grouped: boolean }) {
  const model = useModel();
  const { m, mine } = props;
  const status = mine ? model.statusOf(m) : undefined;
  const sender = mine ? "You" : model.nameOf(m.sender_id);
  const body = m.deleted ? "Message deleted" : m.kind === "text" ? (m.text ?? m.content) : m.kind === "media" || (m.kind === "encrypted" && m.media) ? <MediaBody m={m} /> : m.kind === "call" ? "📞 Call" : (m.text ?? "🔒 Encrypted message");
  return (
    <div
      class={`msg ${mine ? "mine" : "theirs"} ${props.grouped ? "grouped" : ""} ${m.deleted ? "deleted" : ""}`}
      data-testid="message"
      data-seq={m.seq}
      data-status={status}
      data-sender={m.sender_id}
      data-client-message-id={m.client_message_id}
    >
      <div class="bubble">
        {props.group && !mine && !props.grouped && <span class="sender">{sender}</span>}
        <span class="sr-only">{sender}: </span>
        <span class="text" data-testid="message-text">
          {body}
        </span>
        <span class="meta">
          {m.edited_at && <span class="edited">edited</span>}
          <time dateTime={new Date(m.created_at).toISOString()}>{clock(m.created_at)}</time>
          {status && <Ticks status={status} />}
        </span>
        {!m.deleted && <MessageActions m={m} mine={mine} />}
        {m.reactions && (
          <span class="reactions" data-testid="message-reactions">
            {Object.entries(m.reactions).map(([reaction, users]) => (
              <span class="reaction" key={reaction} title={users.map((u) => model.nameOf(u)).join(", ")}>
                {reaction}
                {users.length > 1 ? ` ${users.length}` : ""}
              </span>
            ))}
          </span>
        )}
      </div>
    </div>
  );
}

/** Section 13: react 👍 (again to take it back), and edit or delete where allowed. */
function MessageActions(props: { m: ChatMessage; mine: boolean }) {
  const model = useModel();
  const { m, mine } = props;
  if (m.kind !== "text" && m.kind !== "media" && m.kind !== "encrypted") return null;
  const me = model.chat?.userId ?? "";
  const thumbed = m.reactions?.["👍"]?.includes(me) ?? false;
  const editable = mine && (m.kind === "text" || (m.kind === "encrypted" && m.text !== undefined && !m.media));
  return (
    <span class="msg-actions">
      <button type="button" data-testid="react-button" aria-pressed={thumbed} title="React 👍" onClick={() => model.changeMessage(m, { react: thumbed ? null : "👍" })}>
        👍
      </button>
      {editable && (
        <button
          type="button"
          data-testid="edit-button"
          title="Edit"
          onClick={() => {
            const text = globalThis.prompt?.("Edit message", m.text ?? m.content);
            if (text !== null && text !== undefined && text.trim() !== "" && text !== m.text) model.changeMessage(m, { edit: text });
          }}
        >
          ✏️
        </button>
      )}
      {model.canDelete(m) && (
        <button
          type="button"
          data-testid="delete-button"
          title="Delete"
          onClick={() => {
            if (globalThis.confirm?.("Delete this message for everyone?")) model.changeMessage(m, { delete: true });
          }}
        >
          🗑️
        </button>
      )}
    </span>
  );
}

function PendingRow(props: { p: PendingSend }) {
  const model = useModel();
  const { p } = props;
  const status = p.failed ? "failed" : "pending";
  return (
    <div class={`msg mine ${status}`} data-testid="message" data-status={status} data-client-message-id={p.client_message_id}>
      <div class="bubble">
        <span class="sr-only">You: </span>
        <span class="text" data-testid="message-text">
          {p.kind === "media" ? `📎 ${p.text ?? "Attachment"}` : (p.text ?? "")}
        </span>
        <span class="meta">
          <time dateTime={new Date(p.created_at).toISOString()}>{clock(p.created_at)}</time>
          <Ticks status={status} />
        </span>
        {p.failed && (
          <span class="failed-note" role="alert">
            Not sent: {p.failed}{" "}
            <button class="link" onClick={() => model.dismiss(p.client_message_id)}>
              Dismiss
            </button>
          </span>
        )}
      </div>
    </div>
  );
}

function Composer(props: { id: string; inputRef: { current: HTMLTextAreaElement | null }; onSend: (text: string) => void }) {
  const model = useModel();
  const [text, setText] = useState(drafts.get(props.id) ?? "");
  useEffect(() => setText(drafts.get(props.id) ?? ""), [props.id]);

  function submit() {
    const value = text.trim();
    if (!value) return;
    props.onSend(value);
    setText("");
    drafts.delete(props.id);
    props.inputRef.current?.focus();
  }

  return (
    <form
      class="composer"
      aria-label="Send a message"
      onSubmit={(e) => {
        e.preventDefault();
        submit();
      }}
    >
      <label class="icon-button attach" title="Attach a photo or file (up to 100 MB)">
        <Icon name="clip" />
        <input
          type="file"
          data-testid="attach-input"
          aria-label="Attach a photo or file"
          class="sr-only"
          onChange={(e) => {
            const input = e.currentTarget;
            for (const file of Array.from(input.files ?? [])) model.media.send(props.id, file);
            input.value = "";
          }}
        />
      </label>
      <label for="composer-input" class="sr-only">
        Message
      </label>
      <textarea
        id="composer-input"
        ref={props.inputRef}
        data-testid="composer"
        rows={1}
        placeholder="Message"
        enterkeyhint="send"
        autocomplete="off"
        value={text}
        onInput={(e) => {
          const value = e.currentTarget.value;
          setText(value);
          drafts.set(props.id, value);
          model.typed(value.length > 0);
        }}
        onKeyDown={(e) => {
          // Enter sends; Shift+Enter is a new line; never mid-composition (IME).
          if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
            e.preventDefault();
            submit();
          }
        }}
        onBlur={() => model.typed(false)}
      />
      <button type="submit" class="send icon-button" data-testid="send-button" aria-label="Send" title="Send (Enter)" disabled={!text.trim()}>
        <Icon name="send" />
      </button>
    </form>
  );
}
