// The terminal view of `npm start`: one line per committed alert and running counters.
import type { Alert } from '@tillwatch/schemas';

const COLORS: Record<Alert['severity'], string> = { low: '\x1b[37m', medium: '\x1b[33m', high: '\x1b[31m', critical: '\x1b[1;31m' };
const RESET = '\x1b[0m';

export function createLiveConsole(out: NodeJS.WriteStream = process.stdout) {
  const color = out.isTTY === true;
  const perRule = new Map<string, number>();
  let total = 0;
  return {
    alerts(alerts: Alert[]) {
      for (const a of alerts) {
        total++;
        perRule.set(a.rule, (perRule.get(a.rule) ?? 0) + 1);
        const time = new Date(a.detected_at).toISOString().slice(11, 19);
        const sev = a.severity.padEnd(8);
        const line = `${time}  ${a.rule.padEnd(20)} ${color ? COLORS[a.severity] : ''}${sev}${color ? RESET : ''} ${a.terminal_id.padEnd(10)} ${a.summary}`;
        out.write(`${line}\n`);
      }
    },
    counters(extra: Record<string, number | string>) {
      const rules = [...perRule].sort().map(([r, n]) => `${r}=${n}`).join(' ');
      const parts = Object.entries(extra).map(([k, v]) => `${k}=${v}`).join(' ');
      out.write(`${color ? '\x1b[2m' : ''}-- ${parts} alerts=${total}${rules ? ` (${rules})` : ''}${color ? RESET : ''}\n`);
    },
  };
}
