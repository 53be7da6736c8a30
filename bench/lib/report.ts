/** The results: a console table, JSON, a Markdown table and an SVG latency plot. */
import type { StepResult } from "./measure.ts";
import type { ProfileSummary } from "./profile.ts";
import type { Figure } from "./scenarios.ts";
import { fmtMs } from "./util.ts";

export function ratio(f: Figure): number | null {
  if (f.real === null || f.baseline === null || f.baseline === 0) return null;
  return Math.round((f.real / f.baseline) * 100) / 100;
}

function fmt(v: number | null, unit: string): string {
  if (v === null) return "–";
  if (unit === "ms") return fmtMs(v);
  if (unit === "MB") return v.toFixed(2);
  if (unit === "units") return v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2);
  return Math.round(v).toLocaleString("en-US");
}

/** "×2.31 (worse)": real / baseline, and which way is good for this figure. */
function ratioText(f: Figure): string {
  const r = ratio(f);
  if (r === null) return "–";
  const worse = f.better === "lower" ? r > 1.05 : r < 0.95;
  const better = f.better === "lower" ? r < 0.95 : r > 1.05;
  return `×${r.toFixed(2)}${worse ? " (worse)" : better ? " (better)" : ""}`;
}

export function consoleTable(figures: Figure[]): string {
  const rows = figures.map((f) => [f.scenario, `${f.name} [${f.unit}]`, fmt(f.real, f.unit), fmt(f.baseline, f.unit), ratioText(f)]);
  const head = ["scenario", "figure", "edge-chat", "baseline", "ratio"];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i >= 2 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join("  ");
  return [line(head), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(line)].join("\n");
}

export interface RunMeta {
  date: string;
  quick: boolean;
  options: unknown;
  node: string;
  miniflare: string;
  cpus: number;
  loadavgStart: number[];
  loadavgEnd: number[];
  durationSeconds: number;
  serverProblems: Record<string, number>;
  /** Figures were measured while other work ran on the machine. */
  label: string;
}

export function markdown(
  meta: RunMeta,
  figures: Figure[],
  sustainedRuns: Record<string, { steps: StepResult[] } | undefined> | null,
  profiles: Record<string, ProfileSummary> = {},
): string {
  const out: string[] = [];
  out.push(`# edge-chat benchmark — ${meta.date}`, "");
  out.push(
    `${meta.label}. ${meta.quick ? "Quick run (`--quick`)" : "Default run"}, ${meta.durationSeconds.toFixed(0)} s; ` +
      `${meta.cpus} CPUs, load average ${meta.loadavgStart.map((l) => l.toFixed(2)).join("/")} at start, ` +
      `${meta.loadavgEnd.map((l) => l.toFixed(2)).join("/")} at end; Node ${meta.node}, miniflare ${meta.miniflare}.`,
    "",
    "Ratio = edge-chat ÷ baseline (the storage-free echo object, bench/baseline/worker.ts). " +
      "Latencies in ms from the scheduled send time; `∞` = some never arrived within the drain window.",
    "",
  );
  let scenario = "";
  for (const f of figures) {
    if (f.scenario !== scenario) {
      scenario = f.scenario;
      out.push("", `## ${scenario}`, "", "| figure | edge-chat | baseline | ratio |", "|---|---:|---:|---:|");
    }
    out.push(`| ${f.name} [${f.unit}]${f.note ? ` — ${f.note}` : ""} | ${fmt(f.real, f.unit)} | ${fmt(f.baseline, f.unit)} | ${ratioText(f)} |`);
  }
  if (sustainedRuns) {
    out.push("", "### sustained: every step", "");
    out.push("| server | rate msg/s | sent | ack p50 | ack p99 | ack max | conv p50 | conv p99 | sync p50 | sync p99 | deliveries/s | client lag max | held |");
    out.push("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|:-:|");
    for (const [name, run] of Object.entries(sustainedRuns)) {
      for (const s of run?.steps ?? []) {
        const held = (s as StepResult & { held?: boolean }).held;
        out.push(
          `| ${name} | ${s.rate} | ${s.sent}${s.aborted ? " (aborted)" : ""} | ${fmtMs(s.ack.p50)} | ${fmtMs(s.ack.p99)} | ${fmtMs(s.ack.max)} | ` +
            `${fmtMs(s.conv.p50)} | ${fmtMs(s.conv.p99)} | ${fmtMs(s.sync.p50)} | ${fmtMs(s.sync.p99)} | ${s.deliveriesPerSecond} | ${s.clientLagMaxMs} | ${held ? "✓" : "✗"} |`,
        );
      }
    }
  }
  if (Object.keys(profiles).length) {
    out.push("", "## CPU profile of the edge-chat isolate (--profile)", "");
    out.push("Self time by function, per scenario (line numbers are in the bundle; `(program)` and `(garbage collector)` are V8's own).");
    for (const [name, p] of Object.entries(profiles)) {
      out.push("", `### ${name}: ${p.totalMs} ms sampled`, "", "| frame | ms | % |", "|---|---:|---:|");
      for (const f of p.top) out.push(`| \`${f.frame}\` | ${f.ms} | ${f.percent} |`);
    }
  }
  const problems = Object.entries(meta.serverProblems).filter(([, n]) => n > 0);
  if (problems.length) {
    out.push("", `Server warnings/errors logged: ${problems.map(([k, n]) => `${k} ${n}`).join(", ")} (see the .server.log next to this file).`);
  }
  out.push("");
  return out.join("\n");
}

// ---- SVG ---------------------------------------------------------------------

const COLORS: Record<string, string> = { "edge-chat": "#1f6feb", baseline: "#d9480f" };
const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

/**
 * Panel 1: sustained sends, latency (log) against offered rate (log2), p50 dashed and p99
 * solid, for the ack and both deliveries, edge-chat against the baseline.
 * Panel 2: every other latency figure as paired bars (log scale).
 */
export function svg(figures: Figure[], sustainedRuns: Record<string, { steps: StepResult[] } | undefined> | null, title: string, threshold: number): string {
  const W = 960;
  const parts: string[] = [];
  let y0 = 40;
  parts.push(`<text x="${W / 2}" y="24" text-anchor="middle" font-size="16" font-weight="bold">${esc(title)}</text>`);

  const yLog = (v: number, top: number, h: number, lo: number, hi: number) => {
    const c = Math.min(hi, Math.max(lo, v));
    return top + h - ((Math.log10(c) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) * h;
  };
  const decades = (lo: number, hi: number) => {
    const out: number[] = [];
    for (let d = Math.floor(Math.log10(lo)); d <= Math.ceil(Math.log10(hi)); d++) {
      for (const m of [1, 2, 5]) {
        const v = m * 10 ** d;
        if (v >= lo && v <= hi) out.push(v);
      }
    }
    return out;
  };

  if (sustainedRuns && Object.values(sustainedRuns).some((r) => r && r.steps.length)) {
    const L = 70;
    const R = 220;
    const top = y0 + 30;
    const h = 320;
    const w = W - L - R;
    const steps = Object.values(sustainedRuns).flatMap((r) => r?.steps ?? []);
    const rates = [...new Set(steps.map((s) => s.rate))].sort((a, b) => a - b);
    const xOf = (rate: number) => (rates.length === 1 ? L + w / 2 : L + (Math.log2(rate / rates[0]!) / Math.log2(rates.at(-1)! / rates[0]!)) * w);
    const finite = steps.flatMap((s) => [s.ack, s.conv, s.sync].flatMap((q) => [q.p50, q.p99])).filter((v): v is number => v !== null && Number.isFinite(v) && v > 0);
    const lo = Math.max(0.1, 10 ** Math.floor(Math.log10(Math.min(...finite, threshold))));
    const hi = 10 ** Math.ceil(Math.log10(Math.max(...finite, threshold * 2)));
    parts.push(`<text x="${L}" y="${y0 + 14}" font-size="14" font-weight="bold">Sustained sends into one conversation: latency vs offered rate</text>`);
    for (const v of decades(lo, hi)) {
      const y = yLog(v, top, h, lo, hi);
      parts.push(`<line x1="${L}" x2="${L + w}" y1="${y}" y2="${y}" stroke="#ddd"/>`);
      parts.push(`<text x="${L - 6}" y="${y + 4}" font-size="11" text-anchor="end">${v}</text>`);
    }
    for (const r of rates) {
      const x = xOf(r);
      parts.push(`<line x1="${x}" x2="${x}" y1="${top}" y2="${top + h}" stroke="#eee"/>`);
      parts.push(`<text x="${x}" y="${top + h + 16}" font-size="11" text-anchor="middle">${r}</text>`);
    }
    const ty = yLog(threshold, top, h, lo, hi);
    parts.push(`<line x1="${L}" x2="${L + w}" y1="${ty}" y2="${ty}" stroke="#c00" stroke-dasharray="2,3"/>`);
    parts.push(`<text x="${L + w - 4}" y="${ty - 4}" font-size="11" fill="#c00" text-anchor="end">ack p99 limit ${threshold} ms</text>`);
    parts.push(`<text x="${L + w / 2}" y="${top + h + 34}" font-size="12" text-anchor="middle">offered rate (messages/s, log scale)</text>`);
    parts.push(`<text transform="translate(${L - 48},${top + h / 2}) rotate(-90)" font-size="12" text-anchor="middle">latency (ms, log scale)</text>`);
    parts.push(`<rect x="${L}" y="${top}" width="${w}" height="${h}" fill="none" stroke="#999"/>`);
    const series: { name: string; kind: "ack" | "conv" | "sync"; p: "p50" | "p99"; width: number; marker: string; dash: string }[] = [
      { name: "ack", kind: "ack", p: "p99", width: 2.5, marker: "circle", dash: "" },
      { name: "ack", kind: "ack", p: "p50", width: 1.5, marker: "circle", dash: "6,4" },
      { name: "conv delivery", kind: "conv", p: "p99", width: 1.5, marker: "square", dash: "2,3" },
      { name: "device delivery", kind: "sync", p: "p99", width: 1.5, marker: "triangle", dash: "9,3,2,3" },
    ];
    const marker = (kind: string, x: number, y: number, color: string, tip: string) =>
      kind === "circle"
        ? `<circle cx="${x}" cy="${y}" r="3.5" fill="${color}">${tip}</circle>`
        : kind === "square"
          ? `<rect x="${x - 3}" y="${y - 3}" width="6" height="6" fill="${color}">${tip}</rect>`
          : `<path d="M${x},${y - 4} L${x + 4},${y + 3} L${x - 4},${y + 3} Z" fill="${color}">${tip}</path>`;
    let ly = top + 4;
    for (const [server, run] of Object.entries(sustainedRuns)) {
      if (!run) continue;
      const color = COLORS[server] ?? "#333";
      for (const s of series) {
        const pts = run.steps
          .map((st) => ({ x: xOf(st.rate), v: st[s.kind][s.p] }))
          .filter((p): p is { x: number; v: number } => p.v !== null && (p.v > 0 || !Number.isFinite(p.v)));
        if (!pts.length) continue;
        const dash = s.dash ? ` stroke-dasharray="${s.dash}"` : "";
        const path = pts.map((p, i) => `${i ? "L" : "M"}${p.x.toFixed(1)},${yLog(Number.isFinite(p.v) ? p.v : hi, top, h, lo, hi).toFixed(1)}`).join(" ");
        parts.push(`<path d="${path}" fill="none" stroke="${color}" stroke-width="${s.width}"${dash}/>`);
        for (const p of pts) {
          const y = yLog(Number.isFinite(p.v) ? p.v : hi, top, h, lo, hi);
          const rate = run.steps.find((st) => xOf(st.rate) === p.x)?.rate;
          parts.push(marker(s.marker, p.x, y, color, `<title>${esc(`${server} ${s.name} ${s.p} @ ${rate} msg/s: ${fmtMs(p.v)} ms`)}</title>`));
        }
        parts.push(`<line x1="${L + w + 12}" x2="${L + w + 40}" y1="${ly}" y2="${ly}" stroke="${color}" stroke-width="${s.width}"${dash}/>`);
        parts.push(marker(s.marker, L + w + 26, ly, color, ""));
        parts.push(`<text x="${L + w + 46}" y="${ly + 4}" font-size="11">${esc(`${server} ${s.name} ${s.p}`)}</text>`);
        ly += 17;
      }
      ly += 8;
    }
    parts.push(`<text x="${L + w + 12}" y="${ly + 6}" font-size="10" fill="#555">∞ / unacked: drawn at the top</text>`);
    y0 = top + h + 60;
  }

  const bars = figures.filter(
    (f) => f.unit === "ms" && f.scenario !== "sustained" && !f.name.includes("CPU") && (f.real !== null || f.baseline !== null),
  );
  if (bars.length) {
    const L = 380;
    const w = W - L - 90;
    const rowH = 26;
    const top = y0 + 30;
    const vals = bars.flatMap((f) => [f.real, f.baseline]).filter((v): v is number => v !== null && Number.isFinite(v) && v > 0);
    const lo = Math.max(0.1, 10 ** Math.floor(Math.log10(Math.min(...vals))));
    const hi = 10 ** Math.ceil(Math.log10(Math.max(...vals)));
    const xOf = (v: number) => L + ((Math.log10(Math.min(hi, Math.max(lo, v))) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) * w;
    parts.push(`<text x="20" y="${y0 + 14}" font-size="14" font-weight="bold">Fan-out and many conversations: latency (ms, log scale)</text>`);
    for (const v of decades(lo, hi)) {
      const x = xOf(v);
      parts.push(`<line x1="${x}" x2="${x}" y1="${top - 4}" y2="${top + bars.length * rowH}" stroke="#e5e5e5"/>`);
      parts.push(`<text x="${x}" y="${top + bars.length * rowH + 14}" font-size="10" text-anchor="middle">${v}</text>`);
    }
    bars.forEach((f, i) => {
      const y = top + i * rowH;
      parts.push(`<text x="${L - 8}" y="${y + 15}" font-size="11" text-anchor="end">${esc(`${f.scenario}: ${f.name}`)}</text>`);
      (["real", "baseline"] as const).forEach((which, j) => {
        const v = f[which];
        if (v === null) return;
        const color = COLORS[which === "real" ? "edge-chat" : "baseline"]!;
        const x1 = xOf(Number.isFinite(v) ? v : hi);
        parts.push(`<rect x="${L}" y="${y + 3 + j * 10}" width="${Math.max(1, x1 - L)}" height="9" fill="${color}"><title>${esc(`${which === "real" ? "edge-chat" : "baseline"}: ${fmtMs(v)} ms`)}</title></rect>`);
        parts.push(`<text x="${x1 + 4}" y="${y + 11 + j * 10}" font-size="9">${fmtMs(v)}</text>`);
      });
    });
    const ly = top + bars.length * rowH + 30;
    parts.push(`<rect x="${L}" y="${ly - 9}" width="12" height="9" fill="${COLORS["edge-chat"]}"/><text x="${L + 16}" y="${ly}" font-size="11">edge-chat</text>`);
    parts.push(`<rect x="${L + 100}" y="${ly - 9}" width="12" height="9" fill="${COLORS.baseline}"/><text x="${L + 116}" y="${ly}" font-size="11">baseline</text>`);
    y0 = ly + 20;
  }
  const H = y0 + 10;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="system-ui, sans-serif">\n<rect width="100%" height="100%" fill="white"/>\n${parts.join("\n")}\n</svg>\n`;
}
