import { afterEach, describe, expect, it } from 'vitest';
import {
  ProgressTelemetry,
  estimateRemainingMs,
  formatDuration,
  formatRate,
  progressLine,
  progressWanted,
} from './progress.js';

const HOUR = 3600_000;

describe('progress formatting', () => {
  it('formats durations from seconds to days', () => {
    expect(formatDuration(0)).toBe('0s');
    expect(formatDuration(42_400)).toBe('42s');
    expect(formatDuration(185_000)).toBe('3m 05s');
    expect(formatDuration(4 * HOUR + 12 * 60_000)).toBe('4h 12m');
    expect(formatDuration(76 * HOUR)).toBe('3d 4h');
  });

  it('formats rates with sensible precision', () => {
    expect(formatRate(null)).toBe('- events/s');
    expect(formatRate(3.14159)).toBe('3.1 events/s');
    expect(formatRate(12_345.6)).toBe('12,346 events/s');
  });

  it('estimates the time left from the lag and the catch-up speed', () => {
    // Reading 3 ms of log per ms while now moves 1 ms: the lag shrinks 2 ms per ms.
    expect(estimateRemainingMs(60_000, 3)).toBe(30_000);
    expect(estimateRemainingMs(HOUR, 3601)).toBeCloseTo(1000, 6);
  });

  it('gives no estimate when the source is not catching up', () => {
    expect(estimateRemainingMs(60_000, 1)).toBeNull();
    expect(estimateRemainingMs(60_000, 0.5)).toBeNull();
    expect(estimateRemainingMs(60_000, null)).toBeNull();
  });

  it('puts position, rate, lag and estimate on one line', () => {
    const line = progressLine({
      source: 'okta',
      newestMs: Date.parse('2026-01-15T08:30:00.250Z'),
      lagMs: 2 * HOUR,
      eventsPerSec: 1500,
      catchUpSpeed: 121,
    });
    expect(line).toBe('okta: at 2026-01-15T08:30:00Z, 1,500 events/s, 2h 00m behind, about 1m 00s left');
  });
});

describe('when progress is shown', () => {
  const tty = { isTTY: true };
  const pipe = { isTTY: false };

  it('shows progress only on a terminal and not with --quiet', () => {
    expect(progressWanted({ stderr: tty, stdout: pipe, quiet: false, stdoutSink: false })).toBe(true);
    expect(progressWanted({ stderr: pipe, stdout: pipe, quiet: false, stdoutSink: false })).toBe(false);
    expect(progressWanted({ stderr: tty, stdout: pipe, quiet: true, stdoutSink: false })).toBe(false);
  });

  it('stays off when a stdout sink writes events to the same terminal', () => {
    expect(progressWanted({ stderr: tty, stdout: tty, quiet: false, stdoutSink: true })).toBe(false);
    expect(progressWanted({ stderr: tty, stdout: pipe, quiet: false, stdoutSink: true })).toBe(true);
  });
});

class FakeTerminal {
  readonly isTTY = true;
  readonly columns = 200;
  written = '';
  write(text: string): boolean {
    this.written += text;
    return true;
  }
}

describe('ProgressTelemetry on a terminal', () => {
  let progress: ProgressTelemetry | undefined;
  afterEach(() => progress?.stop());

  /** Waits until the redraw timer has drawn `text` `times` times (a busy machine delays its ticks). */
  async function redrawn(term: FakeTerminal, text: string, times: number) {
    const deadline = Date.now() + 10_000;
    while (term.written.split(text).length - 1 < times) {
      if (Date.now() > deadline) throw new Error(`${text} was not drawn ${times} times`);
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  function setup(now: { t: number }) {
    const term = new FakeTerminal();
    progress = new ProgressTelemetry({ stream: term, now: () => now.t, redrawMs: 10, minLagMs: 60_000 });
    return { term, progress };
  }

  function deliver(p: ProgressTelemetry, events: number, publishedMs: number) {
    p.batchDelivered({
      source: 'okta',
      events,
      bytes: events * 1000,
      sinks: ['file'],
      newestPublished: new Date(publishedMs).toISOString(),
    });
  }

  it('measures events per second and catch-up speed over the recent window', () => {
    const now = { t: 10 * HOUR };
    const { progress: p } = setup(now);
    deliver(p, 1000, now.t - 2 * HOUR);
    now.t += 1000;
    deliver(p, 1000, now.t - 2 * HOUR + 30_000);
    now.t += 1000;
    deliver(p, 1000, now.t - 2 * HOUR + 60_000);
    const [snap] = p.snapshot();
    expect(snap!.eventsPerSec).toBe(1000);
    // 60 s of log (plus the 2 s that passed) read in 2 s of wall time.
    expect(snap!.catchUpSpeed).toBe(31);
    expect(snap!.lagMs).toBe(2 * HOUR - 60_000);
  });

  it('shows no line for a source that is close to now', () => {
    const now = { t: 10 * HOUR };
    const { progress: p } = setup(now);
    deliver(p, 10, now.t - 5_000);
    expect(p.snapshot()).toEqual([]);
  });

  it('redraws one line in place and removes it when the cycle finishes', async () => {
    const now = { t: 10 * HOUR };
    const { term, progress: p } = setup(now);
    deliver(p, 1000, now.t - HOUR);
    now.t += 1000;
    deliver(p, 1000, now.t - HOUR + 60_000);
    await redrawn(term, 'okta: at ', 2);
    expect(term.written).toContain('okta: at ');
    expect(term.written).not.toContain('\n');
    // Each redraw first returns to the start of the line and clears it.
    expect(term.written).toContain('\r\x1b[J');
    p.cycleFinished({ source: 'okta', pages: 2, events: 2000, ms: 1000, newestPublished: null });
    expect(term.written.endsWith('\r\x1b[J')).toBe(true);
    expect(p.snapshot()).toEqual([]);
  });

  it('prints log lines above the progress line, then redraws it', async () => {
    const now = { t: 10 * HOUR };
    const { term, progress: p } = setup(now);
    deliver(p, 1000, now.t - HOUR);
    now.t += 1000;
    deliver(p, 1000, now.t - HOUR + 60_000);
    await redrawn(term, 'okta: at ', 1);
    term.written = '';
    p.logDestination().write('a log line\n');
    expect(term.written.startsWith('\r\x1b[Ja log line\nokta: at ')).toBe(true);
  });

  it('writes log lines straight through when no progress is shown', () => {
    const now = { t: 10 * HOUR };
    const { term, progress: p } = setup(now);
    p.logDestination().write('plain\n');
    expect(term.written).toBe('plain\n');
  });

  it('moves the cursor up over several lines, one per source', async () => {
    const now = { t: 10 * HOUR };
    const { term, progress: p } = setup(now);
    for (const source of ['a', 'b']) {
      p.batchDelivered({
        source,
        events: 1,
        bytes: 1,
        sinks: [],
        newestPublished: new Date(now.t - HOUR).toISOString(),
      });
    }
    await redrawn(term, 'b: at ', 1);
    expect(term.written).toMatch(/a: at .*\nb: at /);
    term.written = '';
    p.stop();
    expect(term.written).toBe('\r\x1b[1A\x1b[J');
  });
});
