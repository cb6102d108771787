// The money-trail lines of `tillwatch backtest`'s summary: alert updates and refunds by reason, with
// amounts as money per currency (formatMoney: ISO 4217 exponent, "25.00 EUR").
import { formatMoney } from '@tillwatch/schemas';
import type { BacktestRunSummary } from '@tillwatch/rules/backtest';

const fmtInt = (n: number): string => Math.round(n).toLocaleString('en-US');

export function formatTrailSummary(s: Pick<BacktestRunSummary, 'updates' | 'updatesPath' | 'refundReasons' | 'refundsPath'>): string {
  const w = 24;
  const row = (label: string, value: string): string => `  ${label.padEnd(w)}${value}`;
  const reasons = s.refundReasons.reduce((n, r) => n + r.count, 0);
  const lines = [
    row('alert updates', `${fmtInt(s.updates)}${s.updatesPath ? `  -> ${s.updatesPath}` : ''}`),
    row('refund reasons', `${fmtInt(reasons)}${s.refundsPath ? `  -> ${s.refundsPath}` : ''}`),
    ...s.refundReasons.map((r) => row(`  ${r.reason}`, `${fmtInt(r.count)}  ${formatMoney(r.amountMinor, r.currency)}`)),
  ];
  return lines.join('\n');
}
