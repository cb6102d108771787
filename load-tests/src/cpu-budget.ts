// Where the machine's CPU goes during a load-test phase: this process, the local Kafka broker, and
// the whole machine (Linux /proc). On this 2-core VM the broker, the registry and the process under
// test share the cores, so a phase whose cores are all busy is bound by the CPU that all of them
// spend per event, not by any one process: at that point
//   events/s ≤ cores × 1,000,000 / (machine CPU-µs per event)
// and that bound, divided by the raw consume rate of the same run, is the highest ratio to raw
// consume that work of this cost can reach on this machine (round 10 in load-tests/README.md).
// Linux only; elsewhere, or when no local broker process is found, the figures it cannot read are null.
import { readFileSync, readdirSync } from 'node:fs';
import { cpus } from 'node:os';

/** USER_HZ: the unit of /proc's CPU times (100 on every Linux architecture Node supports). */
const TICKS_PER_SEC = 100;

/** Busy and total CPU ticks of the whole machine, all cores (/proc/stat's first line); null off Linux. */
function machineTicks(): { busy: number; total: number; steal: number } | null {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!;
    // cpu user nice system idle iowait irq softirq steal [guest guest_nice: already inside user and nice]
    const [user, nice, system, idle, iowait, irq, softirq, steal] = line.trim().split(/\s+/).slice(1, 9).map(Number) as number[];
    const busy = user! + nice! + system! + irq! + softirq!;
    return { busy, total: busy + idle! + iowait! + steal!, steal: steal! };
  } catch {
    return null;
  }
}

/** User + system CPU ticks of one process (all its threads); null when it is gone or unreadable. */
function processTicks(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name in parentheses (which may itself hold spaces): state is the first, utime the 12th, stime the 13th.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(rest[11]) + Number(rest[12]);
  } catch {
    return null;
  }
}

/** The local Kafka broker's process id (the JVM whose main class is kafka.Kafka), or null (a remote or containerised broker). */
export function findBrokerPid(): number | null {
  return findPidByArg('kafka.Kafka');
}

/** The first process (lowest id) with `arg` as one of its command-line arguments, or null. */
export function findPidByArg(arg: string): number | null {
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return null;
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const args = readFileSync(`/proc/${e}/cmdline`, 'utf8').split('\0');
      if (args.includes(arg)) return Number(e);
    } catch {
      // gone meanwhile
    }
  }
  return null;
}

export interface CpuBudget {
  /** CPU-µs per event of this process (all threads), of the broker, and of the whole machine (every process, every core). */
  processMicrosPerEvent: number;
  brokerMicrosPerEvent: number | null;
  machineMicrosPerEvent: number | null;
  /** Share of all cores' time that was busy during the phase (1 = every core busy the whole phase). */
  machineBusy: number | null;
  /** Share of all cores' time the hypervisor gave to other guests (steal), when the VM reports it. */
  machineSteal: number | null;
  /** cores × 1e6 / machineMicrosPerEvent: the events/s at which this phase's work, at its measured cost, would take every core. */
  cpuBoundEventsPerSec: number | null;
}

/**
 * Starts measuring a phase; the returned function ends it and gives the figures per event.
 * `brokerPid` from findBrokerPid() (taken once per run: scanning /proc is not free).
 */
export function startCpuBudget(brokerPid: number | null): (events: number) => CpuBudget {
  const cores = cpus().length;
  const p0 = process.cpuUsage();
  const b0 = brokerPid === null ? null : processTicks(brokerPid);
  const m0 = machineTicks();
  return (events) => {
    const p = process.cpuUsage(p0);
    const b1 = brokerPid === null ? null : processTicks(brokerPid);
    const m1 = machineTicks();
    const perEvent = (ticks: number) => round((ticks * (1e6 / TICKS_PER_SEC)) / events, 2);
    const busy = m0 && m1 ? m1.busy - m0.busy : null;
    const total = m0 && m1 ? m1.total - m0.total : null;
    const machineMicros = busy === null ? null : perEvent(busy);
    return {
      processMicrosPerEvent: round((p.user + p.system) / events, 2),
      brokerMicrosPerEvent: b0 !== null && b1 !== null ? perEvent(b1 - b0) : null,
      machineMicrosPerEvent: machineMicros,
      machineBusy: busy !== null && total ? round(busy / total, 3) : null,
      machineSteal: m0 && m1 && total ? round((m1.steal - m0.steal) / total, 3) : null,
      cpuBoundEventsPerSec: machineMicros ? Math.round((cores * 1e6) / machineMicros) : null,
    };
  };
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
