/**
 * Feed events as they travel from a conversation to its members' inboxes: each event's JSON
 * (serialized once per fan-out round, however many members get it) and the few fields an
 * inbox files it by. An inbox parses only what it must look into — the newest message of a
 * batch for its list, list changes, device-only events — and logs and streams the rest as the
 * text it received. Structured-cloning the event objects into every inbox, and serializing
 * them again there for the log, was the largest part of a big group's fan-out cost.
 */
import type { FeedEvent } from "../protocol/index";
import type { OwedEvent } from "./conversation-store";

export interface WireEvent {
  feedId: number;
  type: FeedEvent["type"];
  /** The message's seq, for `message` and `message_updated`. */
  seq: number | null;
  /** The message's sender and kind, for `message`. */
  sender: string | null;
  kind: string | null;
  /** The message's created_at, for `message`. */
  at: number | null;
  /** The FeedEvent, as JSON (its `type` first, which device frames rely on). */
  json: string;
}

export function toWire({ feedId, event }: OwedEvent): WireEvent {
  const aboutMessage = event.type === "message" || event.type === "message_updated";
  return {
    feedId,
    type: event.type,
    seq: aboutMessage ? event.message.seq : null,
    sender: event.type === "message" ? event.message.sender_id : null,
    kind: event.type === "message" ? event.message.kind : null,
    at: event.type === "message" ? event.message.created_at : null,
    json: JSON.stringify(event),
  };
}

export const eventOf = (e: WireEvent): FeedEvent => JSON.parse(e.json) as FeedEvent;

const MESSAGE_HEAD = '{"type":"message","message":';

/** A `message` event's message as JSON, cut out of the event's text rather than parsed and re-encoded. */
export function messageJson(e: WireEvent): string {
  if (e.json.startsWith(MESSAGE_HEAD) && e.json.endsWith("}")) return e.json.slice(MESSAGE_HEAD.length, -1);
  const event = eventOf(e);
  return JSON.stringify(event.type === "message" ? event.message : null);
}
