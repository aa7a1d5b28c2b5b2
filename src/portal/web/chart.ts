/// <reference lib="dom" />
// An inline SVG line chart of the numeric fields of telemetry bodies (no library, no canvas).

const NS = 'http://www.w3.org/2000/svg';
const COLORS = ['#0058ad', '#a4262c', '#0b6a0b', '#8764b8', '#ca5010', '#038387'];

function el(tag: string, attrs: Record<string, string | number>): SVGElement {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  return e;
}

export function telemetryChart(series: Map<string, { t: number; v: number }[]>, width = 640, height = 220): SVGElement {
  const all = [...series.values()].flat();
  const svg = el('svg', { class: 'chart', width, height, viewBox: `0 0 ${width} ${height}`, role: 'img' });
  const title = el('title', {});
  title.textContent = `Chart of ${[...series.keys()].join(', ')}`;
  svg.appendChild(title);
  if (!all.length) return svg;
  const pad = 30;
  const t0 = Math.min(...all.map((p) => p.t));
  const t1 = Math.max(...all.map((p) => p.t));
  const v0 = Math.min(...all.map((p) => p.v));
  const v1 = Math.max(...all.map((p) => p.v));
  const x = (t: number) => pad + ((t - t0) / (t1 - t0 || 1)) * (width - 2 * pad);
  const y = (v: number) => height - pad - ((v - v0) / (v1 - v0 || 1)) * (height - 2 * pad);
  svg.appendChild(el('line', { x1: pad, y1: height - pad, x2: width - pad, y2: height - pad, stroke: '#888' }));
  for (const [label, v] of [[String(v0), v0], [String(v1), v1]] as const) {
    const t = el('text', { x: 2, y: y(v) + 4, 'font-size': 10, fill: '#333' });
    t.textContent = label;
    svg.appendChild(t);
  }
  [...series.entries()].forEach(([name, points], i) => {
    const color = COLORS[i % COLORS.length]!;
    svg.appendChild(el('polyline', { fill: 'none', stroke: color, 'stroke-width': 2, points: points.map((p) => `${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`).join(' ') }));
    const legend = el('text', { x: pad + i * 110, y: 14, 'font-size': 12, fill: color });
    legend.textContent = name;
    svg.appendChild(legend);
  });
  return svg;
}
