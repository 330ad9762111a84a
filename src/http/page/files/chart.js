// The listeners-over-time chart of an event's stats: an SVG drawn here from the stats'
// one-point-a-minute series, no chart library.

const SVG = 'http://www.w3.org/2000/svg';
const WIDTH = 600;
const HEIGHT = 200;
const PAD = { left: 40, right: 10, top: 10, bottom: 30 };

function svg(tag, attrs = {}, text) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

function clock(t) {
  return new Date(t).toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' });
}

/**
 * The chart of `series` (`[{t: RFC 3339 minute, listeners: n}, …]`): a step line of listeners
 * per minute with its peak and first and last minute labelled. Its accessible name says the
 * same in words.
 */
export function listenersChart(series) {
  const points = series
    .map((p) => ({ t: Date.parse(p.t), n: Number(p.listeners) }))
    .filter((p) => Number.isFinite(p.t) && Number.isFinite(p.n))
    .sort((a, b) => a.t - b.t);
  const peak = points.reduce((m, p) => Math.max(m, p.n), 0);
  const label = points.length
    ? `Listeners per minute from ${clock(points[0].t)} to ${clock(points[points.length - 1].t)}, at most ${peak}.`
    : 'No listening recorded yet.';
  const root = svg('svg', {
    viewBox: `0 0 ${WIDTH} ${HEIGHT}`,
    class: 'chart',
    role: 'img',
    'aria-label': label,
  });
  root.append(svg('title', {}, label));
  const x0 = PAD.left;
  const x1 = WIDTH - PAD.right;
  const y0 = HEIGHT - PAD.bottom;
  const y1 = PAD.top;
  root.append(svg('line', { x1: x0, y1: y0, x2: x1, y2: y0, class: 'axis' }));
  root.append(svg('line', { x1: x0, y1: y0, x2: x0, y2: y1, class: 'axis' }));
  root.append(svg('text', { x: x0 - 6, y: y0, class: 'tick', 'text-anchor': 'end' }, '0'));
  if (!points.length) {
    root.append(svg('text', { x: (x0 + x1) / 2, y: (y0 + y1) / 2, 'text-anchor': 'middle', class: 'tick' }, 'No listening yet'));
    return root;
  }
  const top = Math.max(peak, 1);
  const first = points[0].t;
  // One minute past the last point, so the last minute has a width.
  const span = Math.max(points[points.length - 1].t + 60000 - first, 60000);
  const x = (t) => x0 + ((t - first) / span) * (x1 - x0);
  const y = (n) => y0 - (n / top) * (y0 - y1);
  let d = `M ${x(first).toFixed(1)} ${y(points[0].n).toFixed(1)}`;
  points.forEach((p, i) => {
    const next = i + 1 < points.length ? points[i + 1].t : p.t + 60000;
    d += ` H ${x(next).toFixed(1)}`;
    if (i + 1 < points.length) d += ` V ${y(points[i + 1].n).toFixed(1)}`;
  });
  root.append(svg('path', { d, class: 'line' }));
  root.append(svg('text', { x: x0 - 6, y: y1 + 10, class: 'tick', 'text-anchor': 'end' }, String(top)));
  root.append(svg('text', { x: x0, y: HEIGHT - 8, class: 'tick' }, clock(first)));
  root.append(svg('text', { x: x1, y: HEIGHT - 8, class: 'tick', 'text-anchor': 'end' }, clock(first + span - 60000)));
  return root;
}
