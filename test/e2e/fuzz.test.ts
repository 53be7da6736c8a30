/**
 * A small fuzz run (bench/fuzz) against the real server: 500 malformed or hostile HTTP
 * bodies, query strings, tokens, WebSocket frames and handshakes, plus one burst of valid
 * messages into a group honest users share with attackers, while honest clients keep
 * talking. The full run is `npm run fuzz -- --cases 10000`.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runFuzz, summarize } from "../../bench/fuzz/fuzz.ts";
import { TestServer } from "./server";

let server: TestServer;

beforeAll(async () => {
  server = await TestServer.start();
});

afterAll(async () => {
  await server?.dispose();
});

describe("fuzz, small configuration", () => {
  it("500 hostile cases: no crash, no honest client disturbed, nothing wrongly stored", async () => {
    const report = await runFuzz({
      server,
      cases: 500,
      seed: 20261123,
      concurrency: 12,
      honestPairs: 2,
      subscribedPhones: 2,
      attackers: 4,
      flooders: 3,
      floods: 1,
      floodSize: 100,
      settleMs: 8_000,
      log: () => {},
    });
    const summary = summarize(report);
    expect(report.cases.total, summary).toBe(500);
    expect(report.honest.acknowledged, summary).toBeGreaterThan(0);
    expect({ crashes: report.counts.crashes, disturbed: report.counts.disturbed, wronglyStored: report.counts.wronglyStored }, summary).toEqual({
      crashes: 0,
      disturbed: 0,
      wronglyStored: 0,
    });
  }, 120_000);
});
