// Where a command's time goes, phase by phase: CPU (this process, all threads; and the phase's own
// thread's, on Linux) and wall milliseconds, and when each phase began; a phase run on a worker
// thread beside them is listed after them.
import { readFileSync } from 'node:fs';

export interface PhaseTime {
  /** The process's CPU time (every thread) during the phase. */
  readonly cpuMs: number;
  readonly wallMs: number;
  /** When the phase began, since the process started. */
  readonly startMs?: number;
  /** The CPU time of the thread that ran the phase (Linux: /proc/thread-self/schedstat; elsewhere absent). */
  readonly threadCpuMs?: number;
  /** A phase of another thread (overlapping those of this one): which. */
  readonly thread?: string;
}

const round = (ms: number): number => Math.round(ms * 10) / 10;

/** This thread's CPU time in ms since it started (Linux), or undefined. */
export function threadCpuMs(): number | undefined {
  try {
    return Number(readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ')[0]) / 1e6;
  } catch {
    return undefined;
  }
}

export class Phases {
  private readonly times: Record<string, PhaseTime> = {};
  private cpu: NodeJS.CpuUsage;
  private threadCpu: number | undefined;
  private wall: number;

  /** From now, or (sinceStart) from the start of the process: node's own startup counts too. */
  constructor(sinceStart = false) {
    this.cpu = sinceStart ? { user: 0, system: 0 } : process.cpuUsage();
    this.threadCpu = sinceStart ? 0 : threadCpuMs();
    this.wall = sinceStart ? 0 : performance.now();
  }

  /** Ends the current phase under `name` and starts the next. */
  lap(name: string): void {
    const cpu = process.cpuUsage(this.cpu);
    const threadCpu = threadCpuMs();
    const wall = performance.now();
    this.times[name] = {
      cpuMs: Math.round((cpu.user + cpu.system) / 100) / 10, wallMs: round(wall - this.wall), startMs: round(this.wall),
      ...(threadCpu !== undefined && this.threadCpu !== undefined ? { threadCpuMs: round(threadCpu - this.threadCpu) } : {}),
    };
    this.cpu = process.cpuUsage();
    this.threadCpu = threadCpu;
    this.wall = wall;
  }

  /** A phase another thread timed (`startMs` since the process started), listed after this thread's. */
  add(name: string, t: { readonly cpuMs: number; readonly wallMs: number; readonly startMs: number; readonly threadCpuMs?: number | undefined }, thread: string): void {
    this.times[name] = {
      cpuMs: round(t.cpuMs), wallMs: round(t.wallMs), startMs: round(t.startMs),
      ...(t.threadCpuMs !== undefined ? { threadCpuMs: round(t.threadCpuMs) } : {}), thread,
    };
  }

  /** The phases so far, this thread's in order, then the others'. */
  get record(): Readonly<Record<string, PhaseTime>> {
    const all = Object.entries(this.times);
    return Object.fromEntries([...all.filter(([, t]) => t.thread === undefined), ...all.filter(([, t]) => t.thread !== undefined)]);
  }

  /** One line per phase: `  emit  120.5 ms CPU (110.2 its thread)  130.2 ms  from 310 ms`, another thread's marked. */
  describe(): string {
    const entries = Object.entries(this.record);
    const width = Math.max(...entries.map(([k]) => k.length));
    return entries.map(([k, t]) => {
      const own = t.threadCpuMs !== undefined ? ` (${t.threadCpuMs.toFixed(1).padStart(6)} its thread)` : '';
      const at = t.startMs !== undefined ? `  from ${t.startMs.toFixed(0).padStart(4)} ms${t.thread !== undefined ? `, on the ${t.thread} thread` : ''}` : '';
      return `  ${k.padEnd(width)}  ${t.cpuMs.toFixed(1).padStart(7)} ms CPU${own}  ${t.wallMs.toFixed(1).padStart(7)} ms${at}`;
    }).join('\n');
  }
}
