/**
 * Cloudflare's published list prices (Workers Paid plan, USD), as read on 2026-12-02.
 * Included allowances are ignored: at this scale they round to nothing.
 */
export const PRICES_READ_ON = "2026-12-02";

export const PRICES = {
  /** https://developers.cloudflare.com/durable-objects/platform/pricing/ */
  durableObjects: {
    /** Requests: HTTP, every RPC method call, alarm invocations; incoming WebSocket messages count 1/20. */
    perMillionRequests: 0.15,
    webSocketMessagesPerRequest: 20,
    /** Wall-clock duration while active, billed at 128 MB per object. */
    perMillionGbSeconds: 12.5,
    gbPerObject: 0.128,
    /** SQLite storage backend. */
    perMillionRowsRead: 0.001,
    perMillionRowsWritten: 1.0,
    perGbMonth: 0.2,
  },
  /** https://developers.cloudflare.com/workers/platform/pricing/ (Standard usage model) */
  workers: {
    perMillionRequests: 0.3,
    perMillionCpuMs: 0.02,
  },
  /** https://developers.cloudflare.com/d1/platform/pricing/ */
  d1: {
    perMillionRowsRead: 0.001,
    perMillionRowsWritten: 1.0,
    perGbMonth: 0.75,
  },
  /** https://developers.cloudflare.com/r2/pricing/ (Standard storage; egress is free) */
  r2: {
    perGbMonth: 0.015,
    perMillionClassA: 4.5,
    perMillionClassB: 0.36,
    egressPerGb: 0,
  },
  /** https://developers.cloudflare.com/queues/platform/pricing/ (per 64 KB operation; a message is written, read, deleted) */
  queues: {
    perMillionOperations: 0.4,
    operationsPerMessage: 3,
  },
} as const;

export const SOURCES = [
  "https://developers.cloudflare.com/durable-objects/platform/pricing/",
  "https://developers.cloudflare.com/durable-objects/platform/limits/",
  "https://developers.cloudflare.com/workers/platform/pricing/",
  "https://developers.cloudflare.com/d1/platform/pricing/",
  "https://developers.cloudflare.com/r2/pricing/",
  "https://developers.cloudflare.com/queues/platform/pricing/",
];
