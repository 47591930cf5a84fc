/*
 * The shapes of bench/results/*.json: written by run.ts, read by report.ts (which is why they live in
 * neither).
 */
import type { OtherClientReport } from './other-client.js';
import type { Verification } from './verify.js';

export interface Machine {
  cpu: string;
  cores: number;
  memoryGb: number;
  node: string;
  kernel: string;
  date: string;
  /** 1, 5 and 15 minute load averages: the machine may be shared, and this says how busy it was. */
  loadBefore: number[];
  loadAfter?: number[];
}

export type ContenderName = 'oktail' | 'oktail-lua' | 'oktail-lua-identity' | 'naive' | 'sdk';

export interface RequestCounts {
  requests: number;
  ok: number;
  rateLimited: number;
  events: number;
}

export interface RunResult {
  contender: ContenderName;
  round: number;
  exitCode: number | null;
  wallMs: number;
  cpuMs: number;
  userMs: number;
  systemMs: number;
  /** Peak RSS: VmHWM (see usage.ts), or getrusage's figure where /proc is missing. */
  peakRssKb: number;
  maxRssKb: number;
  vmHwmKb: number | null;
  /** What the emulator saw from this contender's token. */
  served: RequestCounts;
  output: Verification | null;
  /** Local times of this contender's first request and last answer, for drain times. */
  firstRequestAt: number | null;
  lastRequestAt: number | null;
  stderrTail?: string;
}

export interface WindowUse {
  /** Window start, ms since the contender's first request. */
  startMs: number;
  /** 200 answers to the contender / to the other client in the window. */
  ours: number;
  others: number;
  rateLimited: number;
  events: number;
}

export interface ContenderSummary {
  contender: ContenderName;
  runs: number;
  events: number;
  eventsPerSec: number;
  cpuSecPer100k: number;
  /** Whole-process CPU less the same collector's CPU for an empty org, per 100k events. */
  marginalCpuSecPer100k: number | null;
  startupCpuSec: number | null;
  peakRssMb: number;
  identicalLines: number;
  linesInOrder: number;
  renamedInterface: number;
  lines: number;
  firstDifference: Verification['firstDifference'];
  /** This contender's CPU over the baseline's, round by round; `cpuVsNaive` is their median. */
  perRoundCpuVsNaive?: number[];
  cpuVsNaive?: number;
  marginalCpuVsNaive?: number;
  eventsPerSecVsNaive?: number;
  rssVsNaive?: number;
}

export interface ThroughputResult {
  scenario: 'throughput';
  machine: Machine;
  events: number;
  rounds: number;
  startup: RunResult[];
  runs: RunResult[];
  summary: ContenderSummary[];
}

export interface LimitedRun {
  run: RunResult;
  windows: WindowUse[];
  /** Requests the contender may send per window (its share), for oktail; the whole limit otherwise. */
  allowedPerWindow: number;
  /** Windows the contender used from start to end (not its first or last). */
  fullWindows: number;
  eventsPerMinFull: number | null;
  allowedEventsPerMin: number;
  /** Events per minute in full windows over allowed requests per minute x 1000. */
  ceilingRatio: number | null;
  eventsPerRequest: number;
  /** From the contender's first request to its last. */
  drainMs: number | null;
  /**
   * The earliest the last request could go within the budget: the allowed requests sent the moment each
   * window opens, starting in the window (and at the point in it) where the contender started.
   */
  theoreticalDrainMs: number;
  /** The same at the steady allowed rate, one slot apart, ignoring where windows begin. */
  steadyDrainMs: number;
  other?: OtherClientReport & { rateLimitedSeenByEmulator: number };
}

export interface LimitedResult {
  scenario: 'rate-limited' | 'shared-bucket';
  machine: Machine;
  limit: number;
  windowMs: number;
  maxShare: number;
  minRemaining: number;
  events: number;
  /** Share of each window the other client takes (shared bucket only). */
  otherPerWindow: number | null;
  runs: LimitedRun[];
}

export interface MillionResult {
  scenario: 'rss-1m';
  machine: Machine;
  events: number;
  pool: number;
  run: RunResult;
}

/** The sinks whose destinations the sinks scenario starts (bench/sink-destination.ts). */
export const NETWORK_SINKS = [
  'http',
  'splunk_hec',
  'elasticsearch',
  'postgres',
  'syslog',
  's3',
  // The s3 sink with `compression: none`: what the sink costs apart from gzip.
  's3_uncompressed',
] as const;
export type NetworkSink = (typeof NETWORK_SINKS)[number];

export interface SinkRun {
  sink: string;
  round: number;
  exitCode: number | null;
  wallMs: number;
  cpuMs: number;
  peakRssKb: number;
  eventsPerSec: number;
  /** What the destination held: events, distinct uuids, served uuids missing, uuids never served. */
  held: number;
  distinct: number;
  missing: number;
  unknown: number;
  /** File sink only: lines byte-identical to the served event plus the tag. */
  identical?: number;
  /** This run's CPU over the file sink's in the same round. */
  cpuVsFile?: number;
  /** CPU the destination used while oktail ran: its process and its server's (PostgreSQL, rsyslogd). */
  destinationCpuMs?: number;
  /** CPU the Okta emulator used while oktail ran. */
  oktaEmulatorCpuMs?: number;
  /** postgres: the same server fed ready statements by a client that does nothing else, after the run. */
  serverAlone?: { eventsPerSec: number; wallMs: number; serverCpuMs: number };
  stderrTail?: string;
}

export interface SinkSummary {
  sink: string;
  runs: number;
  eventsPerSec: number;
  cpuSecPer100k: number;
  /** Median of the per-round ratios to the file sink's CPU. */
  cpuVsFile: number;
  perRoundCpuVsFile: number[];
  /** Median of the destination's CPU seconds per 100k events (NaN for the file sink). */
  destinationCpuSecPer100k: number;
  /** Median of the Okta emulator's CPU seconds per 100k events. */
  oktaEmulatorCpuSecPer100k: number;
  /** postgres: median events/s of the server alone (see `SinkRun.serverAlone`). */
  serverAloneEventsPerSec?: number;
  /** postgres: median of the server's CPU seconds per 100k events when alone. */
  serverAloneCpuSecPer100k?: number;
  peakRssMb: number;
  /** Every run ended with every served event in the destination (exactly once where the sink promises it). */
  complete: boolean;
  duplicates: number;
}

export interface SinksResult {
  scenario: 'sinks';
  machine: Machine;
  events: number;
  rounds: number;
  command: string;
  runs: SinkRun[];
  summary: SinkSummary[];
}
