/**
 * Fault injection (bench/chaos, `npm run chaos` at full size): clients send over HTTP and
 * conversation sockets while the server process group is killed and restarted on the same
 * state; nothing acked may be lost, nothing duplicated, nothing appear that was not sent,
 * and every reader and device must see the one seq order (CONTRACT.md sections 5 and 6).
 * The checker is first shown to notice each kind of anomaly on made-up histories.
 */
import { describe, expect, it } from "vitest";
import { check, formatReport, type CheckInput, type StoredMessage } from "../../bench/chaos/checker";
import { runChaos } from "../../bench/chaos/harness";

describe("chaos checker", () => {
  const A = "user_a";
  const B = "user_b";
  const C = "user_c";
  const msg = (conv: string, seq: number, sender: string, n: number): StoredMessage => ({
    message_id: `m_${conv}_${seq}`,
    conversation_id: conv,
    seq,
    sender_id: sender,
    client_message_id: `${sender}-${n}`,
    content: `hello ${sender} ${n}`,
  });

  /** A clean run: a direct a–b with 3 messages and a group a–b–c with 4. */
  function clean(): CheckInput {
    const direct = [msg("d1", 1, A, 1), msg("d1", 2, B, 1), msg("d1", 3, A, 2)];
    const group = [msg("g1", 1, C, 1), msg("g1", 2, A, 3), msg("g1", 3, C, 2), msg("g1", 4, B, 2)];
    const all = [...direct, ...group];
    const members: Record<string, string[]> = { d1: [A, B], g1: [A, B, C] };
    return {
      conversations: [
        { id: "d1", label: "direct a-b", members: members.d1! },
        { id: "g1", label: "group abc", members: members.g1! },
      ],
      attempts: all.map((m) => ({ conversation_id: m.conversation_id, sender_id: m.sender_id, client_message_id: m.client_message_id, content: m.content })),
      acks: all.map((m) => ({
        conversation_id: m.conversation_id,
        sender_id: m.sender_id,
        client_message_id: m.client_message_id,
        seq: m.seq,
        message_id: m.message_id,
        order: Number(m.client_message_id.split("-")[1]),
      })),
      histories: [
        { conversation_id: "d1", reader: A, messages: direct },
        { conversation_id: "d1", reader: B, messages: structuredClone(direct) },
        { conversation_id: "g1", reader: A, messages: group },
        { conversation_id: "g1", reader: C, messages: structuredClone(group) },
      ],
      deliveries: all.flatMap((m) => members[m.conversation_id]!.map((u) => ({ user_id: u, ...m, connection: 1 }))),
    };
  }

  const detail = (input: CheckInput) => {
    const r = check(input);
    return Object.fromEntries(Object.entries(r.detail).filter(([, n]) => n > 0));
  };

  it("a clean history has no anomalies", () => {
    const r = check(clean());
    expect(r.ok).toBe(true);
    expect(r.totals).toEqual({ lost: 0, duplicated: 0, unexpected: 0, reordered: 0 });
    expect(r.stats).toEqual({ attempts: 7, acks: 7, stored: 7, deliveries: 18 });
    expect(formatReport(r)).toContain("TOTAL");
  });

  it("lost: an acked message missing from the history, or from a member's device", () => {
    const notStored = clean();
    notStored.histories = notStored.histories.map((h) => (h.conversation_id === "d1" ? { ...h, messages: h.messages.slice(0, 2) } : h));
    // delivered though not stored is a second anomaly, of its own kind
    expect(detail(notStored)).toEqual({ "lost.acked_not_stored": 1, "unexpected.delivered_not_stored": 2 });
    notStored.deliveries = notStored.deliveries.filter((d) => !(d.conversation_id === "d1" && d.seq === 3));
    expect(detail(notStored)).toEqual({ "lost.acked_not_stored": 1 });

    const notDelivered = clean();
    notDelivered.deliveries = notDelivered.deliveries.filter((d) => !(d.user_id === C && d.seq === 3 && d.conversation_id === "g1"));
    expect(detail(notDelivered)).toEqual({ "lost.not_delivered": 1 });
  });

  it("duplicated: a client_message_id stored twice, or a device given the same seq twice", () => {
    const storedTwice = clean();
    const again = { ...msg("d1", 4, A, 2), message_id: "m_again" };
    for (const h of storedTwice.histories) if (h.conversation_id === "d1") h.messages.push(again);
    for (const u of [A, B]) storedTwice.deliveries.push({ user_id: u, ...again, connection: 1 });
    expect(detail(storedTwice)).toEqual({ "duplicated.stored_twice": 1 });

    const deliveredTwice = clean();
    deliveredTwice.deliveries.push({ ...deliveredTwice.deliveries.find((d) => d.user_id === B && d.conversation_id === "g1" && d.seq === 4)!, connection: 2 });
    expect(detail(deliveredTwice)).toEqual({ "duplicated.delivered_twice": 1 });
  });

  it("unexpected: stored or delivered but never sent, or altered", () => {
    const neverSent = clean();
    const ghost = msg("g1", 5, B, 99);
    for (const h of neverSent.histories) if (h.conversation_id === "g1") h.messages.push(ghost);
    for (const u of [A, B, C]) neverSent.deliveries.push({ user_id: u, ...ghost, connection: 1 });
    expect(detail(neverSent)).toEqual({ "unexpected.stored_never_sent": 1 });

    const phantom = clean();
    phantom.deliveries.push({ user_id: A, ...msg("d1", 9, B, 7), connection: 1 });
    expect(detail(phantom)).toEqual({ "unexpected.delivered_not_stored": 1 });

    const altered = clean();
    altered.deliveries.find((d) => d.user_id === A && d.conversation_id === "d1" && d.seq === 2)!.content = "tampered";
    expect(detail(altered)).toEqual({ "unexpected.delivered_altered": 1 });
  });

  it("reordered: gaps, readers disagreeing, devices out of order, acks naming another seq, sender order", () => {
    const gap = clean();
    for (const h of gap.histories) if (h.conversation_id === "g1") h.messages[3] = { ...h.messages[3]!, seq: 5 };
    gap.acks.find((a) => a.conversation_id === "g1" && a.seq === 4)!.seq = 5;
    for (const d of gap.deliveries) if (d.conversation_id === "g1" && d.seq === 4) d.seq = 5;
    expect(detail(gap)).toEqual({ "reordered.history_not_1_to_n": 1 });

    const readers = clean();
    const second = readers.histories.find((h) => h.conversation_id === "d1" && h.reader === B)!;
    second.messages = [second.messages[1]!, second.messages[0]!, second.messages[2]!];
    expect(detail(readers)).toEqual({ "reordered.readers_differ": 2 });

    const device = clean();
    const i = device.deliveries.findIndex((d) => d.user_id === B && d.conversation_id === "d1" && d.seq === 1);
    const j = device.deliveries.findIndex((d) => d.user_id === B && d.conversation_id === "d1" && d.seq === 3);
    [device.deliveries[i], device.deliveries[j]] = [device.deliveries[j]!, device.deliveries[i]!];
    expect(detail(device)).toEqual({ "reordered.device_out_of_order": 2 });

    const ackSeq = clean();
    ackSeq.acks[0]!.seq = 2;
    expect(detail(ackSeq)).toEqual({ "reordered.ack_seq_mismatch": 1 });

    const senderOrder = clean();
    // a's messages in d1 were acked as 1 then 2 but stored at seq 3 and 1
    senderOrder.acks.find((a) => a.client_message_id === `${A}-2`)!.order = 0;
    expect(detail(senderOrder)).toEqual({ "reordered.sender_order": 1 });
  });

  it("an acked message that never arrived anywhere counts once as lost per place it is missing", () => {
    const input = clean();
    input.histories = input.histories.map((h) => ({ ...h, messages: h.messages.filter((m) => !(m.conversation_id === "g1" && m.seq === 4)) }));
    input.deliveries = input.deliveries.filter((d) => !(d.conversation_id === "g1" && d.seq === 4));
    const r = check(input);
    expect(r.totals).toEqual({ lost: 1, duplicated: 0, unexpected: 0, reordered: 0 });
    expect(r.conversations.find((c) => c.conversation_id === "g1")!.counts.lost).toBe(1);
  });
});

describe("chaos run", () => {
  it(
    "4 clients × 30 messages, 2 SIGKILL restarts while sending and one after: nothing lost, duplicated, unexpected or reordered",
    async () => {
      const seed = Number(process.env.CHAOS_SEED ?? 20261123);
      const result = await runChaos({ clients: 4, messages: 30, restarts: 2, signal: "SIGKILL", seed, drops: 6, settleMs: 20_000 });
      const explain = () =>
        `seed ${seed}\n${formatReport(result.check)}\nproblems: ${JSON.stringify(result.problems, null, 2)}\n` +
        `server log (${result.server.logFile}):\n${result.server.logTail ?? ""}`;
      expect(result.server.extraArgs, "the raised send rate reached wrangler dev").toEqual(["--var", "SEND_RATE_PER_MINUTE:1000000"]);
      expect(result.restarts.map((r) => `${r.signal}${r.final ? " final" : ""}`)).toEqual(["SIGKILL", "SIGKILL", "SIGKILL final"]);
      expect(result.check.totals, explain()).toEqual({ lost: 0, duplicated: 0, unexpected: 0, reordered: 0 });
      expect(result.problems, explain()).toEqual([]);
      expect(result.check.stats.acks).toBe(120);
      expect(result.check.stats.stored).toBe(120);
      expect(result.ok).toBe(true);
    },
    180_000,
  );
});
