/**
 * Call signalling in a conversation (CONTRACT.md section 11). The conversation relays
 * ring/accept/decline/offer/answer/ice/hangup between its members' conversation sockets,
 * rings the callees' devices that only have a device socket (an ephemeral frame, or a Web
 * Push through their inbox), tells a user's other devices when one of them answered, ends
 * an unanswered ring after 45 s from the object's alarm, and stores one `kind:"call"`
 * event when a call ends. Nothing else of a call is stored: the state of a ringing or
 * running call lives in the object's key-value storage only until it ends, so that a
 * ring outlives hibernation and the miss fires even if nobody is connected.
 */
import { serialize, type CallEventContent, type CallNoticeFrame, type CallOutcome, type CallRelayFrame, type ClientFrame, type DeviceCallFrame } from "../protocol";
import type { Caller } from "../shared/caller";
import { sendFrame } from "./sockets";

/** A ring not accepted within this long is missed (`CALL_RING_TIMEOUT_SECONDS`, 45). */
export const RING_TIMEOUT_MS = 45_000;
/** Signalling payloads (SDP, candidates) stay small; anything bigger is abuse. */
export const MAX_CALL_PAYLOAD_BYTES = 16 * 1024;
/** A call both sides lost without a hangup is closed after this long. */
const MAX_CALL_MS = 12 * 3600_000;

export type CallFrameIn = Extract<ClientFrame, { type: "call" }>;
export type { CallOutcome };

interface CallRecord {
  call_id: string;
  caller_user: string;
  caller_device: string;
  started_at: number;
  ring_until: number;
  accepted_at: number | null;
  declined_by: string[];
}

export interface CallHost {
  conversationId(): string;
  activeMembers(): string[];
  sockets(tag?: string): WebSocket[];
  socketIdentity(ws: WebSocket): Caller;
  /** The ephemeral frame to each user's device sockets (and a push to those without one, for rings). */
  ringDevices(userIds: string[], frame: DeviceCallFrame, exceptDevice?: string): Promise<void>;
  /** Stores the call's end as a message of kind "call", in the conversation's order. */
  storeCallEvent(caller: Caller, callId: string, content: string): Promise<void>;
  wakeAt(at: number): Promise<void>;
}

type Refusal = { code: "invalid_request" | "not_found" | "too_large" | "forbidden"; message: string };

const key = (callId: string) => `call:${callId}`;

export class CallSignals {
  constructor(
    private readonly storage: DurableObjectStorage,
    private readonly host: CallHost,
    private readonly ringTimeoutMs = RING_TIMEOUT_MS,
  ) {}

  /** Handles one call frame from a member's socket; a refusal is answered as an error frame. */
  async onFrame(ws: WebSocket, from: Caller, frame: CallFrameIn): Promise<Refusal | null> {
    const payloadBytes = frame.payload === undefined ? 0 : new TextEncoder().encode(JSON.stringify(frame.payload)).length;
    if (payloadBytes > MAX_CALL_PAYLOAD_BYTES) return { code: "too_large", message: `call payload over ${MAX_CALL_PAYLOAD_BYTES} bytes` };
    if (frame.to_device_id !== undefined && !this.liveMemberDevice(frame.to_device_id)) {
      return { code: "not_found", message: "to_device_id: no such device of a member on this conversation" };
    }
    const record = await this.storage.get<CallRecord>(key(frame.call_id));
    const now = Date.now();
    // As the contract says: the frame unchanged but for the sender's ids. Device sockets
    // carry every conversation, so what goes there also names this one.
    const relayed: CallRelayFrame = { ...frame, from_user_id: from.userId, from_device_id: from.deviceId };
    const forDevices = (f: CallRelayFrame | CallNoticeFrame): DeviceCallFrame => ({ ...f, conversation_id: this.host.conversationId() });

    switch (frame.action) {
      case "ring": {
        if (record && record.caller_user !== from.userId) return { code: "forbidden", message: "call_id: taken by another call" };
        if (!record) {
          const fresh: CallRecord = { call_id: frame.call_id, caller_user: from.userId, caller_device: from.deviceId, started_at: now, ring_until: now + this.ringTimeoutMs, accepted_at: null, declined_by: [] };
          await this.storage.put(key(frame.call_id), fresh);
          await this.host.wakeAt(fresh.ring_until);
        }
        this.relay(ws, relayed, (peer) => peer.userId !== from.userId);
        const callees = this.host.activeMembers().filter((u) => u !== from.userId);
        await this.host.ringDevices(callees, forDevices(relayed));
        return null;
      }
      case "accept":
      case "decline": {
        if (!record) return { code: "not_found", message: "call_id: no such call ringing" };
        if (from.userId === record.caller_user) return { code: "invalid_request", message: "the caller cannot answer their own call" };
        this.relay(ws, relayed, () => true);
        // The user's other devices stop ringing.
        const elsewhere: CallNoticeFrame = { type: "call", call_id: frame.call_id, action: "answered_elsewhere" };
        for (const peer of this.host.sockets(from.userId)) if (peer !== ws) sendFrame(peer, elsewhere);
        await this.host.ringDevices([from.userId], forDevices(elsewhere), from.deviceId);
        if (frame.action === "accept") {
          if (record.accepted_at === null) {
            record.accepted_at = now;
            await this.storage.put(key(frame.call_id), record);
            await this.host.wakeAt(now + MAX_CALL_MS);
          }
          return null;
        }
        record.declined_by = [...new Set([...record.declined_by, from.userId])];
        const callees = this.host.activeMembers().filter((u) => u !== record.caller_user);
        if (record.accepted_at === null && callees.every((u) => record.declined_by.includes(u))) await this.end(record, "declined");
        else await this.storage.put(key(frame.call_id), record);
        return null;
      }
      case "hangup": {
        this.relay(ws, relayed, frame.to_device_id ? (peer) => peer.deviceId === frame.to_device_id : () => true);
        if (!record) return null;
        if (record.accepted_at === null && from.userId !== record.caller_user) return null; // a callee's device that never answered
        const outcome: CallOutcome = record.accepted_at !== null ? "completed" : "cancelled";
        if (outcome === "cancelled") {
          await this.host.ringDevices(this.host.activeMembers().filter((u) => u !== from.userId), forDevices(relayed));
        }
        await this.end(record, outcome);
        return null;
      }
      default:
        // offer, answer, ice: to the named device, or to everyone else on the conversation
        this.relay(ws, relayed, frame.to_device_id ? (peer) => peer.deviceId === frame.to_device_id : () => true);
        return null;
    }
  }

  /** From the alarm: rings past their 45 s are missed; abandoned calls are closed. The next deadline, if any. */
  async onAlarm(now: number): Promise<number | null> {
    const calls = await this.storage.list<CallRecord>({ prefix: "call:" });
    let next: number | null = null;
    for (const record of calls.values()) {
      const due = record.accepted_at === null ? record.ring_until : record.accepted_at + MAX_CALL_MS;
      if (due > now) {
        next = next === null ? due : Math.min(next, due);
        continue;
      }
      if (record.accepted_at === null) {
        const missed: CallNoticeFrame = { type: "call", call_id: record.call_id, action: "missed" };
        for (const ws of this.host.sockets()) sendFrame(ws, missed);
        await this.host.ringDevices(this.host.activeMembers(), { ...missed, conversation_id: this.host.conversationId() });
        await this.end(record, "missed");
      } else {
        await this.end(record, "completed");
      }
    }
    return next;
  }

  private async end(record: CallRecord, outcome: CallOutcome): Promise<void> {
    await this.storage.delete(key(record.call_id));
    // `answered_at` (an extension of the contract's shape) lets clients show the talk time, not the ringing.
    const content = JSON.stringify({
      call_id: record.call_id,
      started_at: record.started_at,
      ended_at: Date.now(),
      outcome,
      ...(record.accepted_at !== null ? { answered_at: record.accepted_at } : {}),
    } satisfies CallEventContent);
    await this.host.storeCallEvent({ userId: record.caller_user, deviceId: record.caller_device } as Caller, record.call_id, content);
  }

  private relay(from: WebSocket, frame: CallRelayFrame, to: (peer: Caller) => boolean): void {
    const text = serialize(frame);
    for (const ws of this.host.sockets()) {
      if (ws === from || ws.readyState !== WebSocket.OPEN) continue;
      if (to(this.host.socketIdentity(ws))) sendFrame(ws, text);
    }
  }

  private liveMemberDevice(deviceId: string): boolean {
    const members = new Set(this.host.activeMembers());
    return this.host.sockets(`d:${deviceId}`).some((ws) => ws.readyState === WebSocket.OPEN && members.has(this.host.socketIdentity(ws).userId));
  }
}
