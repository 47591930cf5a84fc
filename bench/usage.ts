/*
 * Preloaded into every benchmarked process (`node --import .../usage.js ...`): at exit it writes the
 * process's own CPU time and peak RSS to $BENCH_USAGE_FILE. Every contender is measured by the same code,
 * from inside itself, so nothing of the harness or the emulator is counted.
 */
import { readFileSync, writeFileSync } from 'node:fs';

export interface Usage {
  userMs: number;
  systemMs: number;
  /**
   * `getrusage` peak resident set size. On Linux it starts from the parent's size at fork (exec keeps
   * the forked copy's high-water mark), so it overstates a small child of a big parent: kept for reference.
   */
  maxRssKb: number;
  /** The kernel's high-water mark of this process image's resident memory: the peak RSS reported. */
  vmHwmKb: number | null;
  exitCode: number;
}

function vmHwmKb(): number | null {
  try {
    const m = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync('/proc/self/status', 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

const target = process.env.BENCH_USAGE_FILE;
if (target) {
  process.on('exit', (code) => {
    const cpu = process.cpuUsage();
    const usage: Usage = {
      userMs: cpu.user / 1000,
      systemMs: cpu.system / 1000,
      maxRssKb: process.resourceUsage().maxRSS,
      vmHwmKb: vmHwmKb(),
      exitCode: code,
    };
    writeFileSync(target, JSON.stringify(usage));
  });
}
