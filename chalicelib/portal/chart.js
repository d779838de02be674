// Delivery health as inline SVG built with DOM calls: attempts per hour stacked by outcome,
// and the median latency as a line. No image service and no chart library.

const SVG = "http://www.w3.org/2000/svg";
export const OUTCOMES = ["delivered", "retrying", "failed", "skipped"];
const WIDTH = 720;
const HEIGHT = 200;
const PAD = { left: 36, right: 44, top: 10, bottom: 22 };

function node(tag, attributes = {}, text) {
  const element = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, String(value));
  if (text !== undefined) element.textContent = text;
  return element;
}

/** One stats answer's hours, its latency read from `field` (median_ms or mean_ms). */
export function hoursOf(stats, field) {
  return stats.per_hour.map((hour) => ({ ...hour, latency_ms: hour[field] }));
}

/** Hour-by-hour sums of several handlers' `per_hour` lists (all of the same window); the
 * latency is their medians' mean, weighted by the attempts sent. */
export function sumHours(statsList) {
  if (statsList.length === 0) return [];
  return statsList[0].per_hour.map((hour, index) => {
    const total = { hour: hour.hour, latency_ms: null };
    for (const outcome of OUTCOMES) total[outcome] = 0;
    let weighted = 0;
    let sent = 0;
    for (const stats of statsList) {
      const other = stats.per_hour[index];
      for (const outcome of OUTCOMES) total[outcome] += other[outcome];
      const count = other.delivered + other.retrying + other.failed;
      if (other.median_ms !== null) { weighted += other.median_ms * count; sent += count; }
    }
    total.latency_ms = sent ? Math.round(weighted / sent) : null;
    return total;
  });
}

/** An <svg> of `hours` (each {hour, delivered, retrying, failed, skipped, latency_ms}). */
export function healthChart(hours, label) {
  const counts = hours.map((h) => OUTCOMES.reduce((sum, o) => sum + h[o], 0));
  const attempts = counts.reduce((a, b) => a + b, 0);
  const failed = hours.reduce((sum, h) => sum + h.failed, 0);
  const peak = Math.max(1, ...counts);
  const slowest = Math.max(1, ...hours.map((h) => h.latency_ms || 0));
  const plotWidth = WIDTH - PAD.left - PAD.right;
  const plotHeight = HEIGHT - PAD.top - PAD.bottom;
  const step = plotWidth / Math.max(1, hours.length);
  const summary = `${label}: ${attempts} attempts, ${failed} failed, over ${hours.length} hours`;
  const svg = node("svg", { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: "img", "aria-label": summary, class: "chart" });
  svg.append(node("title", {}, summary));
  svg.append(node("line", { x1: PAD.left, x2: WIDTH - PAD.right, y1: HEIGHT - PAD.bottom, y2: HEIGHT - PAD.bottom, class: "axis" }));
  svg.append(node("text", { x: PAD.left - 4, y: PAD.top + 8, "text-anchor": "end", class: "tick" }, String(peak)));
  svg.append(node("text", { x: WIDTH - PAD.right + 4, y: PAD.top + 8, class: "tick latency" }, `${slowest} ms`));
  hours.forEach((hour, index) => {
    let top = HEIGHT - PAD.bottom;
    for (const outcome of OUTCOMES) {
      if (!hour[outcome]) continue;
      const height = (hour[outcome] / peak) * plotHeight;
      top -= height;
      const bar = node("rect", { x: PAD.left + index * step + 1, y: top, width: Math.max(1, step - 2), height, class: outcome });
      bar.append(node("title", {}, `${hour.hour}: ${hour[outcome]} ${outcome}`));
      svg.append(bar);
    }
  });
  const points = hours
    .map((hour, index) => hour.latency_ms === null ? null
      : `${PAD.left + (index + 0.5) * step},${HEIGHT - PAD.bottom - (hour.latency_ms / slowest) * plotHeight}`)
    .filter(Boolean);
  if (points.length > 1) svg.append(node("polyline", { points: points.join(" "), class: "latency" }));
  else if (points.length === 1) {
    const [x, y] = points[0].split(",");
    svg.append(node("circle", { cx: x, cy: y, r: 3, class: "latency" }));
  }
  const first = hours[0]?.hour;
  if (first) {
    svg.append(node("text", { x: PAD.left, y: HEIGHT - 6, class: "tick" }, new Date(first).toLocaleString()));
    svg.append(node("text", { x: WIDTH - PAD.right, y: HEIGHT - 6, "text-anchor": "end", class: "tick" }, "now"));
  }
  svg.dataset.attempts = String(attempts);
  return svg;
}

/** The chart's key; `latency` names what its line is (e.g. "median latency"). */
export function legend(latency) {
  const list = document.createElement("ul");
  list.className = "legend";
  for (const name of [...OUTCOMES, "latency"]) {
    const item = document.createElement("li");
    const swatch = document.createElement("span");
    swatch.className = `swatch ${name}`;
    item.append(swatch, name === "latency" ? latency : name);
    list.append(item);
  }
  return list;
}
