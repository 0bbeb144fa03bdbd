// One series (counts or sizes) drawn with uPlot: bars or a line, a tooltip with the bucket
// and its value, zero buckets marked on the baseline, keyboard reading with the arrows.
/* global uPlot */

import { formatCount, parseLabel } from "./format.js";

const COLOR = "#2f5fd0";
const FILL = "rgba(47, 95, 208, 0.85)";
const FILL_SOFT = "rgba(47, 95, 208, 0.12)";
const ZERO = "#8a929c";
const AXIS = "#4a525c";
const GRID = "rgba(0, 0, 0, 0.07)";

const DAY_STEPS = [1, 2, 3, 7, 14, 28];
const HOUR_STEPS = [1, 2, 3, 4, 6, 12, 24, 48];
const VALUE_STEPS = [];
for (let p = 1; p <= 1e12; p *= 10) VALUE_STEPS.push(p, 2 * p, 5 * p);

export class SeriesChart {
  /**
   * @param {HTMLElement} container
   * @param {{name: string, one: string, other: string, onHover?: (index: number|null) => void}} options
   *   `one` and `other` name what is counted ("event", "events") in the tooltip.
   */
  constructor(container, { name, one, other, onHover = () => {} }) {
    this.container = container;
    this.name = name;
    this.unitName = { one, other };
    this.onHover = onHover;
    this.plot = null;
    this.shape = null;
    this.labels = [];
    this.values = [];
    this.parsed = [];
    this.keyIndex = null;
    this.resize = new ResizeObserver(() => this.fit());
    this.resize.observe(container);
    container.addEventListener("keydown", (event) => this.key(event));
    container.addEventListener("blur", () => this.point(null));
  }

  size() {
    const width = Math.max(200, Math.floor(this.container.clientWidth));
    const height = width < 520 ? 220 : 300;
    return { width, height };
  }

  fit() {
    if (!this.plot) return;
    const { width, height } = this.size();
    if (width !== this.plot.width || height !== this.plot.height) this.plot.setSize({ width, height });
  }

  /** Draw `values` (one per label); `style` is "bars" or "line", `unit` "day" or "hour". */
  render({ labels, values, style, unit }) {
    this.labels = labels;
    this.values = values;
    this.parsed = labels.map(parseLabel);
    const shape = `${style}/${unit}/${labels.length}`;
    const data = [labels.map((_, i) => i), values];
    if (this.plot && shape === this.shape) {
      this.plot.setData(data, true);
      return;
    }
    this.destroy();
    this.shape = shape;
    this.plot = new uPlot(this.options(style, unit, labels.length), data, this.container);
    this.tip = document.createElement("div");
    this.tip.className = "tip";
    this.tip.hidden = true;
    this.plot.over.append(this.tip);
  }

  options(style, unit, count) {
    const bars = style === "bars";
    const { width, height } = this.size();
    const self = this;
    return {
      width,
      height,
      padding: [12, 12, 0, 4],
      legend: { show: false },
      cursor: {
        drag: { x: false, y: false, setScale: false },
        points: { size: 8, fill: COLOR, stroke: "#fff" },
        y: false,
      },
      scales: {
        x: { time: false, range: () => [-0.5, count - 0.5] },
        y: {
          range: (u, min, max) => {
            const top = Math.max(max ?? 0, 1);
            return [0, top <= 4 ? top + 0.5 : top * 1.1];
          },
        },
      },
      axes: [
        {
          stroke: AXIS,
          grid: { show: false },
          ticks: { stroke: GRID },
          space: unit === "hour" ? 46 : 52,
          incrs: unit === "hour" ? HOUR_STEPS : DAY_STEPS,
          size: unit === "hour" ? 48 : 34,
          values: (u, splits) => self.ticks(splits, unit),
        },
        {
          stroke: AXIS,
          grid: { stroke: GRID },
          ticks: { show: false },
          incrs: VALUE_STEPS,
          values: (u, splits) => splits.map((v) => (Number.isInteger(v) ? formatCount(v) : "")),
          size: (u, values) => {
            const longest = Math.max(1, ...(values ?? []).map((v) => String(v).length));
            return 18 + longest * 8;
          },
        },
      ],
      series: [
        {},
        {
          label: this.name,
          stroke: COLOR,
          width: bars ? 0 : 2,
          fill: bars ? FILL : FILL_SOFT,
          paths: bars ? uPlot.paths.bars({ size: [0.72, 64], align: 0 }) : uPlot.paths.linear(),
          points: { show: !bars, size: 6, fill: COLOR, stroke: COLOR },
        },
      ],
      hooks: {
        draw: bars ? [(u) => self.markZeros(u)] : [],
        setCursor: [(u) => self.showTip(u)],
      },
    };
  }

  ticks(splits, unit) {
    let lastDay = null;
    return splits.map((value) => {
      if (!Number.isInteger(value) || value < 0 || value >= this.parsed.length) return "";
      const label = this.parsed[value];
      if (unit !== "hour") return label.tick;
      const text = label.day !== lastDay ? `${label.tick}\n${label.date}` : label.tick;
      lastDay = label.day;
      return text;
    });
  }

  /** A short grey bar on the baseline for every zero bucket, so empty buckets show among
   * the bars (a line shows them as points on the baseline). */
  markZeros(u) {
    const values = u.data[1];
    if (!values || !values.length) return;
    const ratio = uPlot.pxRatio || 1;
    const slot = u.bbox.width / values.length;
    const width = Math.max(2 * ratio, Math.min(slot * 0.6, 40 * ratio));
    const y = u.valToPos(0, "y", true);
    const ctx = u.ctx;
    ctx.save();
    ctx.fillStyle = ZERO;
    values.forEach((value, index) => {
      if (value !== 0) return;
      const x = u.valToPos(index, "x", true);
      ctx.fillRect(x - width / 2, y - 3 * ratio, width, 3 * ratio);
    });
    ctx.restore();
  }

  showTip(u) {
    const index = u.cursor.idx;
    this.onHover(index ?? null);
    if (index == null || this.values[index] == null) {
      this.tip.hidden = true;
      return;
    }
    const label = this.parsed[index];
    this.tip.replaceChildren(
      document.createTextNode(label.full),
      document.createElement("br"),
      Object.assign(document.createElement("b"), { textContent: formatCount(this.values[index]) }),
      document.createTextNode(` ${this.values[index] === 1 ? this.unitName.one : this.unitName.other}`),
    );
    this.tip.hidden = false;
    const x = u.valToPos(index, "x");
    const y = u.valToPos(this.values[index], "y");
    const half = this.tip.offsetWidth / 2;
    const left = Math.min(Math.max(x, half), u.over.clientWidth - half);
    const below = y < this.tip.offsetHeight + 14;
    this.tip.style.left = `${left}px`;
    this.tip.style.top = `${y}px`;
    this.tip.style.transform = below ? "translate(-50%, 14px)" : "translate(-50%, calc(-100% - 10px))";
  }

  /** Move the cursor to a bucket (null hides it): the arrows do this from the keyboard. */
  point(index) {
    if (!this.plot) return;
    this.keyIndex = index;
    if (index == null) {
      this.plot.setCursor({ left: -10, top: -10 });
      return;
    }
    const left = this.plot.valToPos(index, "x");
    const top = this.plot.valToPos(this.values[index] ?? 0, "y");
    this.plot.setCursor({ left, top });
  }

  key(event) {
    const count = this.values.length;
    if (!count) return;
    const current = this.keyIndex ?? this.plot?.cursor.idx ?? null;
    let next = null;
    if (event.key === "ArrowRight") next = current == null ? 0 : Math.min(count - 1, current + 1);
    else if (event.key === "ArrowLeft") next = current == null ? count - 1 : Math.max(0, current - 1);
    else if (event.key === "Home") next = 0;
    else if (event.key === "End") next = count - 1;
    else if (event.key === "Escape") {
      this.point(null);
      return;
    } else return;
    event.preventDefault();
    this.point(next);
  }

  /** The chart as a PNG on white, with a title line. */
  png(title) {
    if (!this.plot) return Promise.resolve(null);
    const source = this.plot.ctx.canvas;
    const ratio = uPlot.pxRatio || 1;
    const pad = 16 * ratio;
    const head = 30 * ratio;
    const canvas = document.createElement("canvas");
    canvas.width = source.width + 2 * pad;
    canvas.height = source.height + head + 2 * pad;
    const ctx = canvas.getContext("2d");
    ctx.fillStyle = "#ffffff";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    ctx.fillStyle = "#1b1f24";
    ctx.font = `600 ${15 * ratio}px system-ui, "DejaVu Sans", sans-serif`;
    ctx.fillText(title, pad, pad + 18 * ratio, canvas.width - 2 * pad);
    ctx.drawImage(source, pad, pad + head);
    return new Promise((resolve) => canvas.toBlob(resolve, "image/png"));
  }

  destroy() {
    if (this.plot) this.plot.destroy();
    this.plot = null;
    this.shape = null;
    this.keyIndex = null;
  }
}
