// The console's pure modules, in Node: money by ISO 4217 exponent, the URL <-> filters mapping, and
// the SSE parser (the browser reads the stream with fetch(), so the parsing is ours).
import { describe, expect, it } from 'vitest';
import { formatDetail, formatDuration, formatMoney, formatTime, minorExponent, minutesBetween, toMajorDecimal } from '../static/assets/format.js';
import { STAGE_RULES, defaultFilters, filterProblem, filtersToApiQuery, filtersToSearch, filtersToStreamQuery, matchesFilters, parseFilters, ruleChoices } from '../static/assets/filters.js';
import { createSseParser, type SseEvent } from '../static/assets/sse.js';

describe('money', () => {
  it('scales minor units by the ISO 4217 exponent, not by floating point or Intl defaults', () => {
    expect(formatMoney(4250, 'EUR', 'en-US')).toBe('EUR 42.50');
    expect(formatMoney(123456789, 'USD', 'en-US')).toBe('USD 1,234,567.89');
    expect(formatMoney(5, 'EUR', 'en-US')).toBe('EUR 0.05');
    expect(formatMoney(-1999, 'EUR', 'en-US')).toBe('-EUR 19.99');
    expect(formatMoney(4250, 'JPY', 'en-US')).toBe('JPY 4,250');
    expect(formatMoney(1234, 'KWD', 'en-US')).toBe('KWD 1.234');
    // CLDR gives IQD 0 digits; ISO 4217 says 3.
    expect(minorExponent('IQD')).toBe(3);
    expect(formatMoney(1500, 'IQD', 'en-US')).toBe('IQD 1.500');
    expect(formatMoney(12345, 'CLF', 'en-US')).toBe('CLF 1.2345');
    // Beyond 2^53 / 100 a float division would round; the decimal string does not.
    expect(toMajorDecimal(9007199254740991, 2)).toBe('90071992547409.91');
    expect(toMajorDecimal(7, 3)).toBe('0.007');
    expect(toMajorDecimal(0, 0)).toBe('0');
  });

  it('falls back to the code and the exact amount for a code Intl does not accept', () => {
    expect(formatMoney(4250, 'E1R', 'en-US')).toBe('E1R 42.50');
  });
});

describe('durations and times', () => {
  it('formats by size, in UTC', () => {
    expect(formatDuration(850)).toBe('850 ms');
    expect(formatDuration(42_000)).toBe('42 s');
    expect(formatDuration(12 * 60_000 + 5_000)).toBe('12 min 5 s');
    expect(formatDuration(3 * 3_600_000 + 20 * 60_000)).toBe('3 h 20 min');
    expect(formatDuration(2 * 86_400_000 + 4 * 3_600_000)).toBe('2 d 4 h');
    expect(formatDuration(null)).toBe('–');
    expect(minutesBetween(1_000, 121_000)).toBe('2.0 min');
    expect(formatTime(Date.UTC(2026, 11, 6, 2, 41, 7))).toBe('2026-12-06 02:41:07 UTC');
    expect(formatDetail('gap_ms', 120_000, 'EUR')).toBe('2 min');
    expect(formatDetail('excess_minor', 1000, 'EUR')).toBe('EUR 10.00');
    expect(formatDetail('ratio', 12.5, 'EUR')).toBe('12.5');
  });
});

describe('filters in the URL', () => {
  it('offers the registered rules (GET /rules/ids), the stage\'s, the rules seen and those filtered on, sorted, once each', () => {
    expect(ruleChoices(['sync_lag', 'duplicate_charge', 'large_refund'], new Set(['sync_lag', 'custom_rule']), ['x_rule'])).toEqual(
      [...new Set(['custom_rule', 'duplicate_charge', 'large_refund', 'sync_lag', 'x_rule', ...STAGE_RULES])].sort(),
    );
    // The API could not say: what the view has seen and the filter still give a usable list.
    expect(ruleChoices(null, ['refund_velocity'], [])).toEqual(['refund_velocity', ...STAGE_RULES].sort());
    expect(ruleChoices(null, [], [])).toEqual([...STAGE_RULES]);
  });

  it('defaults to the open queue and round-trips every filter', () => {
    expect(parseFilters('')).toEqual(defaultFilters());
    expect(filtersToSearch(defaultFilters())).toBe('');
    const f = parseFilters('?rule=duplicate_charge&rule=sync_lag&severity=high&status=any&merchant=M1&terminal=T1&from=2026-12-06T00:00:00Z&to=2026-12-06T01:00:00.000Z');
    expect(f).toEqual({ rule: ['duplicate_charge', 'sync_lag'], severity: ['high'], status: [], merchant: ['M1'], terminal: ['T1'], from: '2026-12-06T00:00:00Z', to: '2026-12-06T01:00:00Z' });
    expect(parseFilters(filtersToSearch(f))).toEqual(f);
    expect(filtersToApiQuery(f, { limit: 20, cursor: 'abc' })).toBe('rule=duplicate_charge&rule=sync_lag&severity=high&merchant=M1&terminal=T1&from=2026-12-06T00%3A00%3A00Z&to=2026-12-06T01%3A00%3A00Z&limit=20&cursor=abc');
    expect(filtersToStreamQuery(f)).toBe('rule=duplicate_charge&rule=sync_lag&severity=high&merchant=M1&terminal=T1');
    // Unknown severities / statuses from a hand-edited link are dropped, not sent (the API would 400).
    expect(parseFilters('?severity=urgent&status=closed').severity).toEqual([]);
    expect(parseFilters('?status=resolved&status=acknowledged').status).toEqual(['resolved', 'acknowledged']);
  });

  it('matches live alerts as the API would list them', () => {
    const a = { rule: 'duplicate_charge', severity: 'high', merchant_id: 'M1', terminal_id: 'T1', detected_at: Date.parse('2026-12-06T00:30:00Z') };
    expect(matchesFilters(a, defaultFilters())).toBe(true);
    expect(matchesFilters(a, parseFilters('?rule=sync_lag'))).toBe(false);
    expect(matchesFilters(a, parseFilters('?status=resolved'))).toBe(false);
    expect(matchesFilters(a, parseFilters('?from=2026-12-06T00:30:00Z'))).toBe(true);
    expect(matchesFilters(a, parseFilters('?to=2026-12-06T00:30:00Z'))).toBe(false);
  });

  it('names a filter the API would refuse', () => {
    expect(filterProblem({ ...defaultFilters(), merchant: ['<img src=x onerror=alert(1)>'] })).toMatch(/merchant ids/);
    expect(filterProblem({ ...defaultFilters(), from: '2026-12-06T01:00:00Z', to: '2026-12-06T00:00:00Z' })).toMatch(/earlier/);
    expect(filterProblem(defaultFilters())).toBeNull();
  });
});

describe('SSE parser', () => {
  const parse = (chunks: string[]) => {
    const events: SseEvent[] = [];
    const retries: number[] = [];
    const p = createSseParser((e) => events.push(e), (ms) => retries.push(ms));
    for (const c of chunks) p.push(c);
    return { events, retries };
  };

  it('reads the API stream: retry, comments, id/event/data frames', () => {
    const { events, retries } = parse(['retry: 5000\n: connected as ana\n\n', 'id: a1\nevent: alert\ndata: {"x":1}\n\n: ping 1\n\n']);
    expect(retries).toEqual([5000]);
    expect(events).toEqual([{ id: 'a1', event: 'alert', data: '{"x":1}' }]);
  });

  it('joins frames split anywhere, multi-line data, and CR / CRLF / LF line ends (also split between chunks)', () => {
    const text = 'event: alert\r\ndata: one\r\ndata: two\r\rdata:three\n\nid: 9\ndata: x\r\n\r\n';
    const whole = parse([text]).events;
    expect(whole).toEqual([
      { event: 'alert', data: 'one\ntwo', id: '' },
      { event: 'message', data: 'three', id: '' },
      { event: 'message', data: 'x', id: '9' },
    ]);
    for (let cut = 1; cut < text.length; cut++) expect(parse([text.slice(0, cut), text.slice(cut)]).events).toEqual(whole);
    expect(parse(text.split('')).events).toEqual(whole);
  });
});
