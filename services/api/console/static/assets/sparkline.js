// Sync lag over time as a small SVG line (p90 per minute, max as a lighter line), with a text
// equivalent for screen readers. Built with DOM calls (no markup strings).
import { svg, h } from './dom.js';
import { formatDuration, formatShortTime } from './format.js';

/**
 * @param {import('./types.js').LagSeries} series
 * @param {{ width?: number, height?: number, label: string }} o
 */
export function lagSparkline(series, o) {
  const width = o.width ?? 320;
  const height = o.height ?? 64;
  const pts = series.points;
  if (pts.length === 0) return h('p', { class: 'muted' }, `${o.label}: no arrivals in the last ${series.window_minutes} min of the terminal's time.`);
  // The scale starts at one minute: a steady 2 s lag is a line near the bottom, not a full-height one.
  const maxLag = Math.max(60_000, ...pts.map((p) => p.max_ms ?? 0));
  const t0 = pts[0]?.minute ?? 0;
  const t1 = Math.max(t0 + 60_000, pts[pts.length - 1]?.minute ?? 0);
  const x = (/** @type {number} */ t) => 4 + ((t - t0) / (t1 - t0)) * (width - 8);
  const y = (/** @type {number} */ v) => height - 4 - (v / maxLag) * (height - 8);
  const line = (/** @type {(p: import('./types.js').LagPoint) => number | null} */ pick) =>
    pts.map((p) => `${x(p.minute).toFixed(1)},${y(pick(p) ?? 0).toFixed(1)}`).join(' ');
  const worst = pts.reduce((a, b) => ((b.max_ms ?? 0) > (a.max_ms ?? 0) ? b : a));
  const last = pts[pts.length - 1];
  const text = `${o.label}: ${pts.length} minutes with arrivals; latest minute p90 ${formatDuration(last?.p90_ms)}; worst ${formatDuration(worst.max_ms)} at ${formatShortTime(worst.minute)} UTC.`;
  const single = pts.length === 1;
  return h(
    'figure',
    { class: 'spark' },
    svg(
      'svg',
      { viewBox: `0 0 ${width} ${height}`, width, height, role: 'img', 'aria-label': text, class: 'spark-svg' },
      svg('title', {}, text),
      svg('line', { x1: 0, x2: width, y1: height - 4, y2: height - 4, class: 'spark-axis' }),
      single ? svg('circle', { cx: x(t0), cy: y(pts[0]?.p90_ms ?? 0), r: 3, class: 'spark-p90-dot' }) : svg('polyline', { points: line((p) => p.max_ms), class: 'spark-max' }),
      single ? null : svg('polyline', { points: line((p) => p.p90_ms), class: 'spark-p90' }),
    ),
    h('figcaption', null, h('span', { class: 'legend-p90' }, 'p90'), ' / ', h('span', { class: 'legend-max' }, 'max'), ` per minute; top of the scale ${formatDuration(maxLag)}. `, `${formatShortTime(t0)} – ${formatShortTime(t1)} UTC`),
  );
}
