// Labels, numbers, CSV and downloads. Bucket labels are read as text, never through the
// browser's clock or zone: they are already in the workspace's reporting zone.

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const DAY = /^(\d{4})-(\d{2})-(\d{2})$/;
const HOUR = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$/;

/** A bucket label ("2026-11-25" or "2026-11-25T10:00:00+01:00") in its parts. */
export function parseLabel(label) {
  const day = DAY.exec(label);
  if (day) {
    const [, y, m, d] = day;
    const weekday = DAYS[new Date(Date.UTC(+y, +m - 1, +d)).getUTCDay()];
    const date = `${MONTHS[+m - 1]} ${+d}`;
    return { date, tick: date, time: null, full: `${weekday} ${y}-${m}-${d}`, day: `${y}-${m}-${d}` };
  }
  const hour = HOUR.exec(label);
  if (hour) {
    const [, y, m, d, hh, mm, , offset] = hour;
    const date = `${MONTHS[+m - 1]} ${+d}`;
    const zone = offset ? ` ${offset === "Z" ? "+00:00" : offset}` : "";
    return {
      date,
      tick: `${hh}:${mm}`,
      time: `${hh}:${mm}`,
      full: `${y}-${m}-${d} ${hh}:${mm}${zone}`,
      day: `${y}-${m}-${d}`,
    };
  }
  return { date: label, tick: label, time: null, full: label, day: label };
}

const NUMBER = new Intl.NumberFormat("en-US");
export function formatCount(value) {
  return value == null ? "–" : NUMBER.format(value);
}

export function formatChange(current, previous) {
  const difference = current - previous;
  const sign = difference > 0 ? "+" : difference < 0 ? "−" : "±";
  const absolute = `${sign}${NUMBER.format(Math.abs(difference))}`;
  if (previous === 0) return { text: current === 0 ? "±0" : `${absolute} (new)`, difference };
  const percent = (Math.abs(difference) / previous) * 100;
  const shown = percent >= 10 || percent === 0 ? percent.toFixed(0) : percent.toFixed(1);
  return { text: `${absolute} (${sign}${shown}%)`, difference };
}

/** RFC 4180 CSV with a header line. */
export function toCsv(header, rows) {
  const cell = (value) => {
    const text = String(value);
    return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
  };
  return [header, ...rows].map((row) => row.map(cell).join(",")).join("\r\n") + "\r\n";
}

export function safeFileName(...parts) {
  return parts
    .filter((part) => part !== undefined && part !== null && part !== "")
    .map((part) => String(part).replace(/[^A-Za-z0-9._-]+/g, "_").replace(/^_+|_+$/g, ""))
    .filter(Boolean)
    .join("-")
    .slice(0, 120);
}

export function download(blob, name) {
  const url = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = url;
  link.download = name;
  link.hidden = true;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

export function clockTime(ms) {
  const date = new Date(ms);
  return date.toLocaleTimeString("en-GB", { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

export function inWords(seconds) {
  if (seconds < 90) return `${Math.max(1, Math.round(seconds))} s`;
  if (seconds < 90 * 60) return `${Math.round(seconds / 60)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}
