// Where a command's time goes, phase by phase: CPU (this process, all threads) and wall milliseconds.
export interface PhaseTime {
  readonly cpuMs: number;
  readonly wallMs: number;
}

export class Phases {
  private readonly times: Record<string, PhaseTime> = {};
  private cpu: NodeJS.CpuUsage;
  private wall: number;

  /** From now, or (sinceStart) from the start of the process: node's own startup counts too. */
  constructor(sinceStart = false) {
    this.cpu = sinceStart ? { user: 0, system: 0 } : process.cpuUsage();
    this.wall = sinceStart ? 0 : performance.now();
  }

  /** Ends the current phase under `name` and starts the next. */
  lap(name: string): void {
    const cpu = process.cpuUsage(this.cpu);
    const wall = performance.now();
    this.times[name] = { cpuMs: Math.round((cpu.user + cpu.system) / 100) / 10, wallMs: Math.round((wall - this.wall) * 10) / 10 };
    this.cpu = process.cpuUsage();
    this.wall = wall;
  }

  /** The phases so far, in order. */
  get record(): Readonly<Record<string, PhaseTime>> {
    return this.times;
  }

  /** One line per phase: `  emit  120.5 ms CPU  130.2 ms`. */
  describe(): string {
    const width = Math.max(...Object.keys(this.times).map((k) => k.length));
    return Object.entries(this.times).map(([k, t]) => `  ${k.padEnd(width)}  ${t.cpuMs.toFixed(1).padStart(7)} ms CPU  ${t.wallMs.toFixed(1).padStart(7)} ms`).join('\n');
  }
}
