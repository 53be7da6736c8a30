/**
 * Voice and video calls (CONTRACT.md section 11): signalling over the conversation socket,
 * media peer to peer (or through TURN) in an RTCPeerConnection the app gets to attach
 * tracks to. Capture stays with the app: it passes a MediaStream, it receives the remote one.
 *
 * Negotiation follows "perfect negotiation" (W3C WebRTC 1.0 §10.7, MDN): both sides may
 * offer at any time (a video toggle, an ICE restart); on glare the polite side — the
 * device with the smaller id — rolls back its own offer and answers, the impolite side
 * ignores the other's offer. A dropped network restarts ICE rather than the call.
 */
import { Emitter } from "./emitter";
import type { OpenConversation } from "./conversation";

export type CallAction = "ring" | "accept" | "decline" | "offer" | "answer" | "ice" | "hangup" | "answered_elsewhere" | "missed";

export interface CallFrame {
  type: "call";
  call_id: string;
  action: CallAction;
  conversation_id?: string;
  from_user_id?: string;
  from_device_id?: string;
  to_device_id?: string;
  payload?: unknown;
}

export type CallState = "ringing" | "connecting" | "connected" | "ended";
export type CallEndReason = "hangup" | "declined" | "missed" | "answered_elsewhere" | "failed" | "removed";

export interface CallEvents extends Record<string, unknown> {
  state: CallState;
  /** The remote side's media, as tracks arrive. */
  stream: MediaStream;
  ended: { reason: CallEndReason; by?: string };
}

export interface CallEnvironment {
  deviceId: string;
  open: (conversationId: string) => OpenConversation;
  iceServers: () => Promise<RTCIceServer[]>;
  RTCPeerConnection?: typeof RTCPeerConnection;
}

/** One call on one device: from `ring` (or an incoming ring) to its end. */
export class Call extends Emitter<CallEvents> {
  state: CallState;
  pc: RTCPeerConnection | null = null;
  /** The other side's device, once it has answered (or rung). */
  peerDeviceId: string | null;
  readonly remoteStream: MediaStream | null = null;
  private conv: OpenConversation | null = null;
  private offSocket: (() => void) | null = null;
  private makingOffer = false;
  private ignoreOffer = false;
  private pendingCandidates: RTCIceCandidateInit[] = [];
  private onlineListener = () => this.pc?.restartIce();

  constructor(
    private readonly env: CallEnvironment,
    readonly callId: string,
    readonly conversationId: string,
    readonly direction: "outgoing" | "incoming",
    readonly video: boolean,
    peerDeviceId: string | null,
    /** Who rang (incoming calls). */
    readonly fromUserId: string | null = null,
  ) {
    super();
    this.state = direction === "incoming" ? "ringing" : "connecting";
    this.peerDeviceId = peerDeviceId;
  }

  /** Polite: the device with the smaller id yields on glare. */
  private get polite(): boolean {
    return this.env.deviceId < (this.peerDeviceId ?? "");
  }

  /** Joins the conversation socket, where the signalling flows. */
  async attach(): Promise<void> {
    this.conv = this.env.open(this.conversationId);
    await this.conv.ready();
  }

  /** Hears this call's frames from the conversation socket (the client routes them here). */
  async onFrame(frame: CallFrame): Promise<void> {
    if (this.state === "ended") return;
    switch (frame.action) {
      case "accept":
        if (this.direction !== "outgoing" || this.pc) return;
        this.peerDeviceId = frame.from_device_id ?? null;
        return this.startMedia(this.localStream);
      case "decline":
        if (this.direction === "outgoing" && !this.pc) this.end("declined", frame.from_user_id);
        return;
      case "hangup":
        if (!frame.from_device_id || !this.peerDeviceId || frame.from_device_id === this.peerDeviceId) this.end("hangup", frame.from_user_id);
        return;
      case "missed":
        if (!this.pc) this.end("missed");
        return;
      case "answered_elsewhere":
        if (this.direction === "incoming" && !this.pc) this.end("answered_elsewhere");
        return;
      case "offer":
      case "answer":
        return this.onDescription(frame.payload as RTCSessionDescriptionInit);
      case "ice":
        return this.onCandidate(frame.payload as RTCIceCandidateInit | null);
    }
  }

  private localStream: MediaStream | null = null;

  /** Caller side: ring the conversation; media starts when a device accepts. */
  async ring(stream: MediaStream | null): Promise<void> {
    this.localStream = stream;
    await this.attach();
    this.signal("ring", { video: this.video });
  }

  /** Callee side: answer with this stream (or none, to only listen). */
  async accept(stream: MediaStream | null): Promise<void> {
    if (this.state !== "ringing") return;
    this.localStream = stream;
    this.setState("connecting");
    await this.attach();
    this.signal("accept");
    await this.startMedia(stream);
  }

  decline(): void {
    if (this.state !== "ringing") return;
    void this.attach().then(() => this.signal("decline"));
    this.end("declined");
  }

  hangup(): void {
    if (this.state === "ended") return;
    this.signal("hangup");
    this.end("hangup");
  }

  /** Mutes or unmutes the local audio tracks. */
  setMuted(muted: boolean): void {
    for (const t of this.localStream?.getAudioTracks() ?? []) t.enabled = !muted;
  }

  /** Turns the local camera off or on (the track stays, black frames go out). */
  setCamera(on: boolean): void {
    for (const t of this.localStream?.getVideoTracks() ?? []) t.enabled = on;
  }

  private async startMedia(stream: MediaStream | null): Promise<void> {
    const Impl = this.env.RTCPeerConnection ?? globalThis.RTCPeerConnection;
    if (!Impl) throw new Error("calls need RTCPeerConnection (a browser)");
    const pc = new Impl({ iceServers: await this.env.iceServers() });
    this.pc = pc;
    const remote = new MediaStream();
    (this as { remoteStream: MediaStream | null }).remoteStream = remote;
    pc.ontrack = ({ track }) => {
      remote.addTrack(track);
      this.emit("stream", remote);
    };
    pc.onicecandidate = ({ candidate }) => this.signal("ice", candidate ? candidate.toJSON() : null);
    pc.onnegotiationneeded = async () => {
      try {
        this.makingOffer = true;
        await pc.setLocalDescription();
        this.signal("offer", pc.localDescription?.toJSON());
      } finally {
        this.makingOffer = false;
      }
    };
    pc.onconnectionstatechange = () => {
      if (pc.connectionState === "connected") this.setState("connected");
      if (pc.connectionState === "failed") pc.restartIce();
    };
    pc.oniceconnectionstatechange = () => {
      if (pc.iceConnectionState === "failed") pc.restartIce();
    };
    globalThis.addEventListener?.("online", this.onlineListener);
    for (const track of stream?.getTracks() ?? []) pc.addTrack(track, stream!);
    // Without local tracks nothing triggers negotiation: ask for what we want to receive.
    if (!stream?.getTracks().length && this.direction === "outgoing") {
      pc.addTransceiver("audio", { direction: "recvonly" });
      if (this.video) pc.addTransceiver("video", { direction: "recvonly" });
    }
  }

  private async onDescription(description: RTCSessionDescriptionInit): Promise<void> {
    const pc = this.pc;
    if (!pc || !description) return;
    const collision = description.type === "offer" && (this.makingOffer || pc.signalingState !== "stable");
    this.ignoreOffer = !this.polite && collision;
    if (this.ignoreOffer) return;
    await pc.setRemoteDescription(description); // rolls back our own offer when polite
    for (const c of this.pendingCandidates.splice(0)) await pc.addIceCandidate(c).catch(() => undefined);
    if (description.type === "offer") {
      await pc.setLocalDescription();
      this.signal("answer", pc.localDescription?.toJSON());
    }
  }

  private async onCandidate(candidate: RTCIceCandidateInit | null): Promise<void> {
    const pc = this.pc;
    if (!pc || !candidate) return;
    if (!pc.remoteDescription) return void this.pendingCandidates.push(candidate);
    try {
      await pc.addIceCandidate(candidate);
    } catch (err) {
      if (!this.ignoreOffer) throw err;
    }
  }

  private signal(action: CallAction, payload?: unknown): void {
    this.conv?.send({
      type: "call",
      call_id: this.callId,
      action,
      // ring, accept and decline go to everyone: the server tells the callee's other devices
      ...(this.peerDeviceId && action !== "ring" && action !== "accept" && action !== "decline" ? { to_device_id: this.peerDeviceId } : {}),
      ...(payload !== undefined ? { payload } : {}),
    });
  }

  /** Ends the call locally: media stopped, listeners told once. */
  end(reason: CallEndReason, by?: string): void {
    if (this.state === "ended") return;
    this.pc?.close();
    this.pc = null;
    globalThis.removeEventListener?.("online", this.onlineListener);
    this.offSocket?.();
    this.setState("ended");
    this.emit("ended", { reason, ...(by ? { by } : {}) });
  }

  private setState(state: CallState): void {
    if (this.state === state) return;
    this.state = state;
    this.emit("state", state);
  }
}
