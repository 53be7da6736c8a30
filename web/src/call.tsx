/**
 * Calls on screen (CONTRACT.md section 11, through the SDK's `chat.calls`): the call buttons
 * of a conversation header, the incoming-call screen, the in-call view (remote video, a local
 * preview, mute, camera, hang-up) and the line a call leaves in the chat.
 */
import { useEffect, useRef, useState } from "preact/hooks";
import type { ChatMessage } from "@edge-chat/sdk";
import { callLabel, clock, duration } from "./format";
import type { CallView } from "./model";
import { Avatar, Icon, useModel } from "./ui";

/** Voice and video call buttons for a conversation header (direct conversations with someone else). */
export function CallButtons(props: { id: string; peer: string | null; name: string }) {
  const model = useModel();
  if (!props.peer) return null;
  const busy = model.callBusy;
  return (
    <div class="call-buttons">
      <button
        class="icon-button"
        data-testid="call-audio"
        aria-label={`Voice call ${props.name}`}
        title="Voice call"
        disabled={busy}
        onClick={() => void model.startCall(props.id, false)}
      >
        <Icon name="phone" />
      </button>
      <button
        class="icon-button"
        data-testid="call-video"
        aria-label={`Video call ${props.name}`}
        title="Video call"
        disabled={busy}
        onClick={() => void model.startCall(props.id, true)}
      >
        <Icon name="video" />
      </button>
    </div>
  );
}

/** A call message as a system line: "Missed call", "Call, 1:23", … — no ticks, no bubble. */
export function CallEntry(props: { m: ChatMessage; mine: boolean }) {
  const { m } = props;
  const label = callLabel(m.content);
  const missed = /^(Missed|Declined|Cancelled)/.test(label);
  return (
    <div class={`call-entry ${missed ? "missed" : ""}`} data-testid="call-entry" data-seq={m.seq} role="note">
      <span class="call-entry-pill">
        <Icon name="phone" />
        <span data-testid="call-entry-text">{label}</span>
        <time dateTime={new Date(m.created_at).toISOString()}>{clock(m.created_at)}</time>
      </span>
    </div>
  );
}

/** Whatever call is going on: the incoming screen, the in-call view, or a word after one ended. */
export function CallOverlay() {
  const model = useModel();
  const view = model.call;
  if (!view) {
    return model.callNotice ? (
      <div class="call-notice" role="status" data-testid="call-notice">
        {model.callNotice}
      </div>
    ) : null;
  }
  if (view.call.direction === "incoming" && view.call.state === "ringing") return <IncomingCall view={view} />;
  return <InCall view={view} />;
}

function IncomingCall(props: { view: CallView }) {
  const model = useModel();
  const { call, answering } = props.view;
  const from = call.fromUserId;
  const name = from ? model.nameOf(from) : "Someone";
  const kind = call.video ? "video" : "voice";
  const accept = useRef<HTMLButtonElement>(null);
  useEffect(() => accept.current?.focus(), []);
  return (
    <div class="call-screen incoming" data-testid="incoming-call" role="alertdialog" aria-modal="true" aria-labelledby="incoming-title" aria-describedby="incoming-kind" data-call-id={call.callId}>
      <div class="call-peer">
        <Avatar id={from ?? call.conversationId} name={name} />
        <h2 id="incoming-title">{name}</h2>
        <p id="incoming-kind" class="call-status">
          Incoming {kind} call…
        </p>
      </div>
      <div class="call-controls">
        <button class="call-round decline" data-testid="call-decline" aria-label="Decline" onClick={() => model.declineCall()}>
          <Icon name="hangup" />
          <span>Decline</span>
        </button>
        <button ref={accept} class="call-round accept" data-testid="call-accept" aria-label={`Accept ${kind} call`} disabled={answering} onClick={() => void model.acceptCall()}>
          <Icon name={call.video ? "video" : "phone"} />
          <span>Accept</span>
        </button>
      </div>
    </div>
  );
}

function InCall(props: { view: CallView }) {
  const model = useModel();
  const { view } = props;
  const { call } = view;
  const conversation = model.conversations.get(call.conversationId);
  const peer = conversation ? model.peerOf(conversation) : call.fromUserId;
  const name = peer ? model.nameOf(peer) : conversation ? model.titleOf(conversation) : "…";
  const remoteVideo = useRef<HTMLVideoElement>(null);
  const localVideo = useRef<HTMLVideoElement>(null);
  const [, tick] = useState(0);

  // The clock, and the "Calling…" → "Connecting…" step (the SDK has no event for it).
  useEffect(() => {
    const t = setInterval(() => tick((n) => n + 1), 1_000);
    return () => clearInterval(t);
  }, []);
  useEffect(() => {
    const el = remoteVideo.current;
    if (!el) return;
    // A track added later: set the stream again so the element takes it up.
    el.srcObject = null;
    el.srcObject = view.remote;
    if (view.remote) void el.play().catch(() => undefined);
  }, [view.remote, view.remoteTracks]);
  useEffect(() => {
    const el = localVideo.current;
    if (el && el.srcObject !== view.local) el.srcObject = view.local;
  }, [view.local]);

  const status =
    call.state === "connected" && view.connectedAt !== null
      ? duration(Date.now() - view.connectedAt)
      : call.direction === "outgoing" && !call.pc
        ? "Calling…"
        : "Connecting…";
  const hasRemoteVideo = call.video && (view.remote?.getVideoTracks().length ?? 0) > 0;
  const hasLocalVideo = (view.local?.getVideoTracks().length ?? 0) > 0;

  return (
    <div class={`call-screen in-call ${hasRemoteVideo ? "with-video" : ""}`} data-testid="in-call" role="dialog" aria-modal="true" aria-label={`Call with ${name}`} data-call-id={call.callId} data-state={call.state}>
      <video ref={remoteVideo} class="remote-video" data-testid="remote-video" autoplay playsInline aria-label={`${name}'s video`} hidden={!hasRemoteVideo} />
      {!hasRemoteVideo && (
        <div class="call-peer">
          <Avatar id={peer ?? call.conversationId} name={name} />
          <h2>{name}</h2>
        </div>
      )}
      <p class="call-status in-call-status" role="status" aria-live="polite" data-testid="call-status">
        {hasRemoteVideo && <strong>{name} · </strong>}
        {status}
      </p>
      {hasLocalVideo && <video ref={localVideo} class={`local-video ${view.cameraOn ? "" : "off"}`} data-testid="local-video" autoplay playsInline muted aria-label="Your camera" />}
      <div class="call-controls">
        <button class={`call-round ${view.muted ? "toggled" : ""}`} data-testid="call-mute" aria-pressed={view.muted} aria-label={view.muted ? "Unmute" : "Mute"} onClick={() => model.toggleMute()}>
          <Icon name={view.muted ? "micOff" : "mic"} />
          <span>{view.muted ? "Unmute" : "Mute"}</span>
        </button>
        <button
          class={`call-round ${view.cameraOn ? "" : "toggled"}`}
          data-testid="call-camera"
          aria-pressed={!view.cameraOn}
          aria-label={view.cameraOn ? "Turn camera off" : "Turn camera on"}
          disabled={!hasLocalVideo}
          onClick={() => model.toggleCamera()}
        >
          <Icon name={view.cameraOn ? "video" : "videoOff"} />
          <span>Camera</span>
        </button>
        <button class="call-round decline" data-testid="call-hangup" aria-label="Hang up" onClick={() => model.hangupCall()}>
          <Icon name="hangup" />
          <span>Hang up</span>
        </button>
      </div>
    </div>
  );
}
