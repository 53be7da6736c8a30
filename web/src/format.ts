/** Small presentation helpers: times, initials, colours. */

const time = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const weekday = new Intl.DateTimeFormat(undefined, { weekday: "short" });
const date = new Intl.DateTimeFormat(undefined, { day: "numeric", month: "short" });
const longDate = new Intl.DateTimeFormat(undefined, { weekday: "long", day: "numeric", month: "long", year: "numeric" });

const DAY = 86_400_000;

function startOfDay(t: number): number {
  const d = new Date(t);
  d.setHours(0, 0, 0, 0);
  return d.getTime();
}

export function clock(t: number): string {
  return time.format(t);
}

/** For the conversation list: a time today, a weekday this week, else a date. */
export function shortWhen(t: number, now = Date.now()): string {
  const today = startOfDay(now);
  if (t >= today) return time.format(t);
  if (t >= today - 6 * DAY) return weekday.format(t);
  return date.format(t);
}

export function dayLabel(t: number, now = Date.now()): string {
  const today = startOfDay(now);
  if (t >= today) return "Today";
  if (t >= today - DAY) return "Yesterday";
  return longDate.format(t);
}

export function sameDay(a: number, b: number): boolean {
  return startOfDay(a) === startOfDay(b);
}

export function lastSeen(t: number | null, now = Date.now()): string {
  if (t === null) return "offline";
  if (t >= startOfDay(now)) return `last seen today at ${time.format(t)}`;
  if (t >= startOfDay(now) - DAY) return `last seen yesterday at ${time.format(t)}`;
  return `last seen ${date.format(t)}`;
}

export function initials(name: string): string {
  const parts = name.replace(/^@/, "").split(/[\s_.-]+/).filter(Boolean);
  const letters = parts.length > 1 ? parts[0]![0]! + parts[1]![0]! : (parts[0] ?? "?").slice(0, 2);
  return letters.toUpperCase();
}

const HUES = [172, 200, 222, 262, 292, 330, 12, 32, 140, 96];

export function hueOf(id: string): number {
  let h = 0;
  for (let i = 0; i < id.length; i++) h = (h * 31 + id.charCodeAt(i)) >>> 0;
  return HUES[h % HUES.length]!;
}

/** A call's length as m:ss (h:mm:ss past an hour). */
export function duration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
}

/**
 * The line a `kind:"call"` message shows (CONTRACT.md section 11: its content is
 * `{"call_id","started_at","ended_at","outcome"}` as JSON).
 */
export function callLabel(content: string | undefined): string {
  let c: { started_at?: unknown; answered_at?: unknown; ended_at?: unknown; outcome?: unknown } = {};
  try {
    c = JSON.parse(content ?? "{}") ?? {};
  } catch {
    c = {};
  }
  switch (c.outcome) {
    case "missed":
      return "Missed call";
    case "declined":
      return "Declined call";
    case "cancelled":
      return "Cancelled call";
    case "completed":
      {
        // Talk time from the answer when the server says it (answered_at), else from the ring.
        const from = typeof c.answered_at === "number" ? c.answered_at : c.started_at;
        return typeof from === "number" && typeof c.ended_at === "number" ? `Call, ${duration(c.ended_at - from)}` : "Call";
      }
    default:
      return "Call";
  }
}
