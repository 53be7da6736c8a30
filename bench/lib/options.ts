/** Command-line options of `npm run bench -- [flags]`, with the defaults and the --quick preset. */
import { existsSync } from "node:fs";
import { parseArgs } from "node:util";

export const SCENARIOS = ["memory", "sustained", "room", "fanout", "many"] as const;
export type ScenarioName = (typeof SCENARIOS)[number];

export interface Options {
  quick: boolean;
  scenarios: ScenarioName[];
  baseline: boolean;
  procs: number;
  name: string;
  out: string;
  /** Bundle the Worker from this tree instead of the repo (A/B a change). */
  source: string | null;
  /** Where both servers keep their SQLite files (objects and D1). */
  stateDir: string | undefined;
  /** Record a V8 CPU profile of the real server over the run. */
  profile: boolean;
  contentBytes: number;
  // sustained
  rates: number[];
  stepSeconds: number;
  maxAckP99: number;
  sustainedSenders: number;
  // room
  roomMembers: number;
  roomRates: number[];
  roomStepSeconds: number;
  /** "conv": conversation sockets only; "devices": each member's device socket open too. */
  roomVariants: ("conv" | "devices")[];
  // fan-out
  fanoutMembers: number;
  fanoutRate: number;
  fanoutSeconds: number;
  fanoutBurst: number;
  // many conversations
  manyConversations: number;
  manyMembers: number;
  manyRate: number;
  manySeconds: number;
  // idle memory
  memorySockets: number;
  memoryKinds: ("conv" | "sync")[];
  idleWait: number;
}

const DEFAULTS: Omit<Options, "quick" | "scenarios" | "baseline" | "out" | "name" | "source" | "stateDir" | "profile"> = {
  procs: 2,
  contentBytes: 100,
  rates: [50, 100, 200, 400, 800, 1600, 3200, 6400],
  stepSeconds: 4,
  maxAckP99: 100,
  sustainedSenders: 8,
  roomMembers: 20,
  roomRates: [10, 20, 40, 80, 160, 320, 640, 1280, 2560],
  roomStepSeconds: 5,
  roomVariants: ["conv", "devices"],
  fanoutMembers: 256,
  fanoutRate: 4,
  fanoutSeconds: 6,
  fanoutBurst: 32,
  manyConversations: 100,
  manyMembers: 10,
  manyRate: 100,
  manySeconds: 8,
  memorySockets: 1000,
  memoryKinds: ["conv", "sync"],
  idleWait: 15,
};

const QUICK: Partial<Options> = {
  rates: [100, 400, 1600],
  stepSeconds: 2,
  sustainedSenders: 4,
  roomRates: [10, 40, 160, 640, 2560],
  roomStepSeconds: 3,
  fanoutRate: 2,
  fanoutSeconds: 3,
  fanoutBurst: 16,
  manyConversations: 50,
  manyRate: 50,
  manySeconds: 4,
  memorySockets: 500,
  memoryKinds: ["conv"],
  idleWait: 11,
};

export const USAGE = `npm run bench -- [options]

  --quick                 a ~1-2 minute run (fewer steps, shorter, smaller)
  --scenario a,b          only these: ${SCENARIOS.join(", ")} (default: all, in that order)
  --no-baseline           skip the baseline server
  --procs N               client processes (default ${DEFAULTS.procs})
  --name NAME             results file name (default "latest", "quick" with --quick)
  --out DIR               results directory (default bench/results)
  --content-bytes N       message content size (default ${DEFAULTS.contentBytes})
  --state-dir DIR         where the servers' SQLite files live (default /dev/shm, a tmpfs: see README
                          "Durability"); pass a directory on disk to include local fsync latency
  --profile               CPU-profile the real server, one profile per scenario (NAME.SCENARIO.cpuprofile,
                          top frames in NAME.md and NAME.profile.txt); it slows the real server, so its
                          figures are not comparable that run
  --source DIR            bundle worker/index.ts from another checkout (A/B a change; wrangler.toml from this repo)

  sustained:  --rates 50,100,…  --step-seconds S  --max-ack-p99 MS  --senders N
  room:       --room-members N  --room-rates 10,20,…  --room-step-seconds S  --room-variants conv,devices
  fanout:     --fanout-members N  --fanout-rate R  --fanout-seconds S  --fanout-burst N
  many:       --conversations N  --members N  --many-rate R  --many-seconds S
  memory:     --memory-sockets N  --memory-kinds conv,sync  --idle-wait S
`;

export function parseOptions(argv: string[], benchDir: string): Options | null {
  const { values } = parseArgs({
    args: argv,
    options: {
      help: { type: "boolean", short: "h" },
      quick: { type: "boolean" },
      scenario: { type: "string" },
      "no-baseline": { type: "boolean" },
      procs: { type: "string" },
      name: { type: "string" },
      out: { type: "string" },
      source: { type: "string" },
      "state-dir": { type: "string" },
      profile: { type: "boolean" },
      "content-bytes": { type: "string" },
      rates: { type: "string" },
      "step-seconds": { type: "string" },
      "max-ack-p99": { type: "string" },
      senders: { type: "string" },
      "room-members": { type: "string" },
      "room-rates": { type: "string" },
      "room-step-seconds": { type: "string" },
      "room-variants": { type: "string" },
      "fanout-members": { type: "string" },
      "fanout-rate": { type: "string" },
      "fanout-seconds": { type: "string" },
      "fanout-burst": { type: "string" },
      conversations: { type: "string" },
      members: { type: "string" },
      "many-rate": { type: "string" },
      "many-seconds": { type: "string" },
      "memory-sockets": { type: "string" },
      "memory-kinds": { type: "string" },
      "idle-wait": { type: "string" },
    },
    strict: true,
  });
  if (values.help) return null;
  const quick = values.quick === true;
  const o: Options = {
    ...DEFAULTS,
    ...(quick ? QUICK : {}),
    quick,
    scenarios: [...SCENARIOS],
    baseline: values["no-baseline"] !== true,
    name: values.name ?? (quick ? "quick" : "latest"),
    out: values.out ?? `${benchDir}/results`,
    source: values.source ?? null,
    stateDir: values["state-dir"] ?? (existsSync("/dev/shm") ? "/dev/shm" : undefined),
    profile: values.profile === true,
  };
  const num = (v: string | undefined, name: string): number | undefined => {
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name}: expected a positive number, got ${v}`);
    return n;
  };
  const set = <K extends keyof Options>(key: K, v: Options[K] | undefined) => {
    if (v !== undefined) o[key] = v;
  };
  if (values.scenario) {
    const wanted = values.scenario.split(",").map((s) => s.trim());
    for (const w of wanted) if (!SCENARIOS.includes(w as ScenarioName)) throw new Error(`--scenario: unknown ${w}; one of ${SCENARIOS.join(", ")}`);
    o.scenarios = SCENARIOS.filter((s) => wanted.includes(s));
  }
  set("procs", num(values.procs, "procs"));
  set("contentBytes", num(values["content-bytes"], "content-bytes"));
  if (values.rates) o.rates = values.rates.split(",").map((r) => num(r, "rates")!).sort((a, b) => a - b);
  set("stepSeconds", num(values["step-seconds"], "step-seconds"));
  set("maxAckP99", num(values["max-ack-p99"], "max-ack-p99"));
  set("sustainedSenders", num(values.senders, "senders"));
  set("roomMembers", num(values["room-members"], "room-members"));
  if (values["room-rates"]) o.roomRates = values["room-rates"].split(",").map((r) => num(r, "room-rates")!).sort((a, b) => a - b);
  set("roomStepSeconds", num(values["room-step-seconds"], "room-step-seconds"));
  if (values["room-variants"]) {
    const variants = values["room-variants"].split(",").map((k) => k.trim());
    for (const v of variants) if (v !== "conv" && v !== "devices") throw new Error(`--room-variants: conv or devices, not ${v}`);
    o.roomVariants = variants as Options["roomVariants"];
  }
  set("fanoutMembers", num(values["fanout-members"], "fanout-members"));
  set("fanoutRate", num(values["fanout-rate"], "fanout-rate"));
  set("fanoutSeconds", num(values["fanout-seconds"], "fanout-seconds"));
  set("fanoutBurst", num(values["fanout-burst"], "fanout-burst"));
  set("manyConversations", num(values.conversations, "conversations"));
  set("manyMembers", num(values.members, "members"));
  set("manyRate", num(values["many-rate"], "many-rate"));
  set("manySeconds", num(values["many-seconds"], "many-seconds"));
  set("memorySockets", num(values["memory-sockets"], "memory-sockets"));
  set("idleWait", num(values["idle-wait"], "idle-wait"));
  if (values["memory-kinds"]) {
    const kinds = values["memory-kinds"].split(",").map((k) => k.trim());
    for (const k of kinds) if (k !== "conv" && k !== "sync") throw new Error(`--memory-kinds: conv or sync, not ${k}`);
    o.memoryKinds = kinds as Options["memoryKinds"];
  }
  if (o.fanoutMembers > 256) process.stderr.write("note: more than 256 members needs MAX_GROUP_MEMBERS raised; the bench raises it\n");
  return o;
}
