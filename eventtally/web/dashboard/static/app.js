// The eventtally dashboard: sign in with a key, an event view and a segments view.
// Views and their queries live in the URL's hash (#/events?event=...&unit=hour), never the
// key: a view can be bookmarked and shared, and the hash never reaches the server's logs.

import { ApiError, allPages, get, onRate, plausibleKey, serverRoot, session } from "./api.js";
import { SeriesChart } from "./chart.js";
import {
  clockTime,
  download,
  formatChange,
  formatCount,
  inWords,
  parseLabel,
  safeFileName,
  toCsv,
} from "./format.js";

const $ = (id) => document.getElementById(id);

const LIVE_MS = 5000;
const EVENT_NAMES_PER_PAGE = 250;
const EVENT_NAME_PAGES = 40; // 10,000 names; past that, type the name
const SEGMENTS_PER_PAGE = 100;
const SEGMENT_PAGES = 20;
const DEFAULT_LENGTH = { day: 30, hour: 24 };
const MAX_OPTIONS = 200;
const LOCAL_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?$/;

const state = {
  workspace: null, // {name, time_zone, apps}
  events: null, // {names, complete}
  eventsError: null,
  segments: null, // [{id, name, analytics_tracking_enabled, tags}]
  segmentsError: null,
  generation: 0,
  series: null, // what the event view shows (also window.__series)
  live: null, // {timer, since, added}
  pausedUntil: 0,
  lastEvent: null,
};

// Banner ------------------------------------------------------------------------------
function showBanner(text, kind = "error") {
  $("banner-text").textContent = text;
  $("banner").classList.toggle("warn", kind === "warn");
  $("banner").dataset.kind = kind;
  $("banner").hidden = false;
}

function hideBanner() {
  $("banner").hidden = true;
  $("banner-text").textContent = "";
  delete $("banner").dataset.kind;
}

/** Every API failure ends here: the server's own message, 401 back to sign-in, 429 when. */
function handleError(error) {
  if (error && error.name === "AbortError") return;
  if (!(error instanceof ApiError)) {
    console.error(error);
    showBanner(`The dashboard failed: ${error && error.message ? error.message : error}`);
    return;
  }
  if (error.status === 401) {
    signOut(`${error.message}. Paste an API key again.`);
    return;
  }
  if (error.status === 429) {
    const at = error.retryAt ?? Date.now() + 60_000;
    state.pausedUntil = at;
    const wait = Math.max(0, (at - Date.now()) / 1000);
    showBanner(
      `${error.message}. Retry after ${clockTime(at)} (in ${inWords(wait)}).` +
        (state.live ? " Live updates pause until then." : ""),
      "warn",
    );
    return;
  }
  showBanner(error.message);
}

// Rate-limit footer ---------------------------------------------------------------------
onRate((rate, path) => {
  const bucket = path.startsWith("events/list") || path === "events" ? "catalogue" : "default";
  $("rate-status").textContent =
    `Rate limit (${bucket}): ${formatCount(rate.remaining)} of ${formatCount(rate.limit)} left` +
    (rate.reset ? `, resets ${clockTime(rate.reset * 1000)}` : "");
});

// Hash routing --------------------------------------------------------------------------
function readHash() {
  const hash = location.hash.replace(/^#/, "");
  const at = hash.indexOf("?");
  const path = at < 0 ? hash : hash.slice(0, at);
  const params = new URLSearchParams(at < 0 ? "" : hash.slice(at + 1));
  const view = path === "/segments" ? "segments" : "events";
  return { view, params };
}

function hashFor(view, params) {
  const query = params.toString();
  return `#/${view}${query ? `?${query}` : ""}`;
}

function navigate(view, params, { replace = false } = {}) {
  const hash = hashFor(view, params);
  if (replace || location.hash === hash) {
    history.replaceState(null, "", hash);
    route();
  } else {
    location.hash = hash; // hashchange routes
  }
}

function route() {
  if (!state.workspace) return;
  stopLive();
  const { view, params } = readHash();
  $("events-view").hidden = view !== "events";
  $("segments-view").hidden = view !== "segments";
  for (const [name, link] of [["events", $("nav-events")], ["segments", $("nav-segments")]]) {
    if (name === view) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  document.title = `${view === "events" ? "Events" : "Segments"} · ${state.workspace.name} · eventtally`;
  if (view === "events") showEvents(params).catch(handleError);
  else showSegments(params).catch(handleError);
}

// Sign in and out -----------------------------------------------------------------------
function showSignIn(message = "") {
  $("booting").hidden = true;
  $("signin-view").hidden = false;
  $("events-view").hidden = true;
  $("segments-view").hidden = true;
  $("workspace-info").hidden = true;
  $("nav").hidden = true;
  $("sign-out").hidden = true;
  $("signin-error").textContent = message;
  $("signin-error").hidden = !message;
  $("api-key").setAttribute("aria-invalid", message ? "true" : "false");
  $("api-key").value = "";
  $("api-key").focus();
  document.title = "Sign in · eventtally";
}

async function signIn(key) {
  $("signin-button").disabled = true;
  try {
    const { body } = await get("workspace", {}, { key });
    session.key = key;
    state.workspace = body;
    hideBanner();
    $("booting").hidden = true;
    $("signin-view").hidden = true;
    $("workspace-name").textContent = body.name;
    $("workspace-zone").textContent = body.time_zone;
    $("ending-zone").textContent = `(${body.time_zone})`;
    $("workspace-info").hidden = false;
    $("nav").hidden = false;
    $("sign-out").hidden = false;
    fillApps(body.apps);
    const signingIn = document.activeElement === $("api-key");
    route();
    // Keyboard and screen-reader users land on the view, not on the vanished form.
    if (signingIn) $(readHash().view === "segments" ? "segments-title" : "events-title").focus();
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    if (error.status === 401) session.key = null;
    let message = error.message;
    if (error.status === 403) message += ". The dashboard needs a key with workspace.get.";
    if (error.status === 429 && error.retryAt) message += `. Retry after ${clockTime(error.retryAt)}.`;
    showSignIn(message);
  } finally {
    $("signin-button").disabled = false;
  }
}

function signOut(message = "") {
  stopLive();
  session.key = null;
  state.workspace = null;
  state.events = null;
  state.eventsError = null;
  state.segments = null;
  state.segmentsError = null;
  state.series = null;
  window.__series = undefined;
  state.generation++;
  eventChart.destroy();
  segmentChart.destroy();
  hideBanner();
  showSignIn(message);
}

// Shared lookups ------------------------------------------------------------------------
function fillApps(apps) {
  const select = $("app-select");
  select.replaceChildren(new Option("All apps", ""));
  for (const app of apps) select.append(new Option(`${app.name}`, app.app_id));
}

async function loadEvents(force = false) {
  if (state.events && !force) return state.events;
  try {
    const { items, complete } = await allPages(
      "events/list",
      "events",
      EVENT_NAMES_PER_PAGE,
      EVENT_NAME_PAGES,
    );
    state.events = { names: items, complete };
    state.eventsError = null;
  } catch (error) {
    if (!(error instanceof ApiError) || error.status === 401 || error.status === 429) throw error;
    state.events = { names: [], complete: false };
    state.eventsError = error.message;
  }
  picker.setNames(state.events.names);
  return state.events;
}

async function loadSegments(force = false) {
  if (state.segments && !force) return state.segments;
  try {
    const { items } = await allPages("segments/list", "segments", SEGMENTS_PER_PAGE, SEGMENT_PAGES);
    state.segments = items;
    state.segmentsError = null;
  } catch (error) {
    if (!(error instanceof ApiError) || error.status === 401 || error.status === 429) throw error;
    state.segments = [];
    state.segmentsError = error.message;
  }
  return state.segments;
}

function segmentName(id) {
  const found = (state.segments ?? []).find((s) => s.id === id);
  return found ? found.name : id;
}

function appName(id) {
  const found = (state.workspace?.apps ?? []).find((a) => a.app_id === id);
  return found ? found.name : id;
}

// The event picker: a searchable combobox over /events/list ------------------------------
class EventPicker {
  constructor(input, list, note, onChoose) {
    this.input = input;
    this.list = list;
    this.note = note;
    this.onChoose = onChoose;
    this.names = [];
    this.value = "";
    this.matches = [];
    this.active = -1;
    input.addEventListener("input", () => this.open(input.value));
    input.addEventListener("click", () => this.toggle());
    input.addEventListener("keydown", (event) => this.key(event));
    input.addEventListener("blur", () => this.close(true));
    list.addEventListener("mousedown", (event) => event.preventDefault());
    list.addEventListener("click", (event) => {
      const option = event.target.closest("[role=option]");
      if (option) this.choose(option.dataset.name);
    });
  }

  setNames(names) {
    this.names = names;
  }

  setValue(name) {
    this.value = name;
    if (document.activeElement !== this.input || this.list.hidden) this.input.value = name;
  }

  toggle() {
    if (this.list.hidden) this.open(this.input.value === this.value ? "" : this.input.value);
    else this.close(false);
  }

  open(filter) {
    const needle = filter.trim().toLowerCase();
    const all = needle
      ? this.names.filter((name) => name.toLowerCase().includes(needle))
      : this.names.slice();
    if (needle) {
      all.sort(
        (a, b) =>
          Number(!a.toLowerCase().startsWith(needle)) - Number(!b.toLowerCase().startsWith(needle)),
      );
    }
    this.matches = all.slice(0, MAX_OPTIONS);
    this.active = this.matches.length ? 0 : -1;
    const options = this.matches.map((name, index) => {
      const item = document.createElement("li");
      item.id = `event-option-${index}`;
      item.setAttribute("role", "option");
      item.setAttribute("aria-selected", "false");
      item.dataset.name = name;
      const at = needle ? name.toLowerCase().indexOf(needle) : -1;
      if (at >= 0) {
        const mark = document.createElement("mark");
        mark.textContent = name.slice(at, at + needle.length);
        item.append(name.slice(0, at), mark, name.slice(at + needle.length));
      } else {
        item.textContent = name;
      }
      return item;
    });
    if (all.length > this.matches.length) {
      const more = document.createElement("li");
      more.className = "more";
      more.setAttribute("aria-disabled", "true");
      more.textContent = `${formatCount(all.length - this.matches.length)} more: keep typing`;
      options.push(more);
    }
    if (!options.length) {
      const none = document.createElement("li");
      none.className = "more";
      none.setAttribute("aria-disabled", "true");
      none.textContent = filter.trim()
        ? `No event named like “${filter.trim()}”; Enter asks for it anyway`
        : "No events yet";
      options.push(none);
    }
    this.list.replaceChildren(...options);
    this.list.hidden = false;
    this.input.setAttribute("aria-expanded", "true");
    this.highlight();
  }

  close(restore) {
    this.list.hidden = true;
    this.input.setAttribute("aria-expanded", "false");
    this.input.removeAttribute("aria-activedescendant");
    if (restore) this.input.value = this.value;
  }

  highlight() {
    for (const item of this.list.querySelectorAll("[role=option]")) {
      item.setAttribute("aria-selected", String(item.id === `event-option-${this.active}`));
    }
    if (this.active >= 0) {
      const item = $(`event-option-${this.active}`);
      this.input.setAttribute("aria-activedescendant", item.id);
      item.scrollIntoView({ block: "nearest" });
    } else {
      this.input.removeAttribute("aria-activedescendant");
    }
  }

  key(event) {
    const open = !this.list.hidden;
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      if (!open) {
        this.open(this.input.value === this.value ? "" : this.input.value);
        return;
      }
      if (!this.matches.length) return;
      const step = event.key === "ArrowDown" ? 1 : -1;
      this.active = Math.min(this.matches.length - 1, Math.max(0, this.active + step));
      this.highlight();
    } else if (event.key === "Enter") {
      event.preventDefault();
      if (open && this.active >= 0) this.choose(this.matches[this.active]);
      else if (this.input.value.trim()) this.choose(this.input.value.trim());
    } else if (event.key === "Escape") {
      if (open) {
        event.preventDefault();
        this.close(true);
      }
    }
  }

  choose(name) {
    this.value = name;
    this.input.value = name;
    this.close(false);
    this.onChoose(name);
  }
}

const picker = new EventPicker($("event-input"), $("event-options"), $("event-note"), (name) =>
  setEventQuery({ event: name }),
);

// The event view ------------------------------------------------------------------------
const eventChart = new SeriesChart($("chart"), {
  name: "Events",
  one: "event",
  other: "events",
  onHover: (index) => markRow($("series-table"), index),
});

function markRow(table, index) {
  for (const row of table.tBodies[0].rows) row.classList.toggle("current", Number(row.dataset.index) === index);
}

function eventQuery(params) {
  const unit = params.get("unit") === "hour" ? "hour" : "day";
  return {
    event: params.get("event") ?? "",
    unit,
    length: params.get("length") ?? String(DEFAULT_LENGTH[unit]),
    ending_at: params.get("ending_at") ?? "",
    app_id: params.get("app_id") ?? "",
    segment_id: params.get("segment_id") ?? "",
    chart: params.get("chart") === "line" ? "line" : "bars",
    live: params.get("live") === "1",
  };
}

/** Change some of the event view's query (a value of "" or null removes it). */
function setEventQuery(changes) {
  const { params } = readHash();
  for (const [name, value] of Object.entries(changes)) {
    if (value === "" || value === null || value === undefined || value === false) params.delete(name);
    else params.set(name, value === true ? "1" : String(value));
  }
  if (params.get("chart") === "bars") params.delete("chart");
  navigate("events", params);
}

function fillSegments(selected) {
  const select = $("segment-select");
  const note = $("segment-note");
  select.replaceChildren(new Option("All users", ""));
  const segments = state.segments ?? [];
  for (const segment of segments) {
    const tracked = segment.analytics_tracking_enabled;
    const option = new Option(tracked ? segment.name : `${segment.name} (not tracked)`, segment.id);
    option.disabled = !tracked;
    select.append(option);
  }
  if (selected && !segments.some((s) => s.id === selected)) {
    select.append(new Option(`${selected} (unknown)`, selected));
  }
  select.value = selected;
  select.disabled = Boolean(state.segmentsError) && !selected;
  if (state.segmentsError) note.textContent = state.segmentsError;
  else if (segments.some((s) => !s.analytics_tracking_enabled)) {
    note.textContent = "Only tracked segments have event series.";
  } else note.textContent = "";
}

function fillEventControls(q) {
  picker.setValue(q.event);
  $("unit-select").value = q.unit;
  $("length-input").value = q.length;
  $("length-input").removeAttribute("aria-invalid");
  const ending = $("ending-input");
  ending.value = LOCAL_TIME.test(q.ending_at) ? q.ending_at : "";
  $("ending-note").textContent = q.ending_at
    ? LOCAL_TIME.test(q.ending_at)
      ? "Wall-clock time in the reporting zone; Now clears it."
      : `ending_at ${q.ending_at} (from the link); Now clears it.`
    : "Empty: now. Wall-clock time in the reporting zone.";
  const apps = $("app-select");
  if (![...apps.options].some((option) => option.value === q.app_id)) {
    apps.append(new Option(`${q.app_id} (unknown)`, q.app_id));
  }
  apps.value = q.app_id;
  for (const radio of document.querySelectorAll("input[name=chart]")) radio.checked = radio.value === q.chart;
  $("live-toggle").checked = q.live;
}

function curlExample() {
  const time = new Date().toISOString().replace(/\.\d+Z$/, "Z");
  const body = JSON.stringify({ events: [{ external_id: "user-1", name: "app_open", time }] });
  return (
    `curl -X POST '${serverRoot()}/users/track' \\\n` +
    `  -H "Authorization: Bearer $EVENTTALLY_API_KEY" \\\n` +
    `  -H 'Content-Type: application/json' \\\n` +
    `  -d '${body}'`
  );
}

async function showEvents(params) {
  const q = eventQuery(params);
  fillEventControls(q);
  const [events] = await Promise.all([loadEvents(), loadSegments()]);
  fillSegments(q.segment_id);
  $("event-note").textContent = state.eventsError
    ? `${state.eventsError}. Type an event name and press Enter.`
    : `${formatCount(events.names.length)} event${events.names.length === 1 ? "" : "s"}` +
      (events.complete ? "" : " shown (the first ones); type any other name and press Enter");
  const empty = !state.eventsError && events.names.length === 0;
  $("events-empty").hidden = !empty;
  if (empty) $("curl-example").textContent = curlExample();
  if (!q.event) {
    $("series-panel").hidden = true;
    if (events.names.length) {
      params.set("event", state.lastEvent && events.names.includes(state.lastEvent) ? state.lastEvent : events.names[0]);
      navigate("events", params, { replace: true });
    }
    return;
  }
  state.lastEvent = q.event;
  await loadSeries(q);
  if (q.live && state.series) startLive(q);
}

function seriesParams(q) {
  return {
    event: q.event,
    length: q.length,
    unit: q.unit,
    ending_at: q.ending_at,
    app_id: q.app_id,
    segment_id: q.segment_id,
  };
}

/** Show a panel's failure in the panel itself (the banner says it too, with what to do). */
function panelFailed(panel, errorLine, error) {
  panel.dataset.state = "error";
  panel.classList.add("failed");
  panel.setAttribute("aria-busy", "false");
  const message = error instanceof ApiError ? error.message : String(error && error.message);
  const known = error instanceof ApiError && error.status !== 0;
  errorLine.textContent = known ? `The server said: ${message}.` : message;
  errorLine.hidden = false;
}

function panelReady(panel, errorLine) {
  panel.classList.remove("failed");
  errorLine.hidden = true;
  errorLine.textContent = "";
  panel.setAttribute("aria-busy", "false");
  panel.dataset.state = "ready";
}

async function loadSeries(q) {
  const generation = ++state.generation;
  const panel = $("series-panel");
  panel.hidden = false;
  panel.setAttribute("aria-busy", "true");
  panel.dataset.state = "loading";
  $("series-loading").hidden = false;
  if (!state.series) $("series-title").textContent = q.event;
  try {
    const params = seriesParams(q);
    const { body: current } = await get("events/data_series", params);
    if (generation !== state.generation) return;
    const first = current.data.length ? current.data[0].time : q.ending_at;
    const { body: previous } = await get("events/data_series", { ...params, ending_at: first });
    if (generation !== state.generation) return;
    renderSeries(q, current.data, previous.data, null);
  } catch (error) {
    if (generation === state.generation) {
      $("series-loading").hidden = true;
      $("series-title").textContent = q.event;
      panelFailed(panel, $("series-error"), error);
    }
    throw error;
  }
}

function sum(points, field = "count") {
  return points.reduce((total, point) => total + point[field], 0);
}

function renderSeries(q, data, previous, changed) {
  const total = sum(data);
  const previousTotal = sum(previous);
  const units = `${q.length} ${q.unit}${Number(q.length) === 1 ? "" : "s"}`;
  state.series = { ...q, data, previous };
  window.__series = {
    event: q.event,
    unit: q.unit,
    length: Number(q.length),
    ending_at: q.ending_at || null,
    app_id: q.app_id || null,
    segment_id: q.segment_id || null,
    chart: q.chart,
    data: data.map((p) => ({ time: p.time, count: p.count })),
    previous: previous.map((p) => ({ time: p.time, count: p.count })),
    total,
    previous_total: previousTotal,
    updated_at: Date.now(),
  };

  const parts = [q.event];
  if (q.segment_id) parts.push(`segment ${segmentName(q.segment_id)}`);
  if (q.app_id) parts.push(`app ${appName(q.app_id)}`);
  $("series-title").textContent = parts.join(" · ");
  const from = data.length ? parseLabel(data[0].time).full : "";
  const to = data.length ? parseLabel(data[data.length - 1].time).full : "";
  const prevFrom = previous.length ? parseLabel(previous[0].time).full : "";
  const prevTo = previous.length ? parseLabel(previous[previous.length - 1].time).full : "";
  $("series-window").textContent =
    `${units}: ${from} to ${to}` + (prevFrom ? ` · previous window: ${prevFrom} to ${prevTo}` : "");

  $("total").textContent = formatCount(total);
  $("previous-label").textContent = `Previous ${units}`;
  $("previous-total").textContent = formatCount(previousTotal);
  const change = formatChange(total, previousTotal);
  $("change").textContent = change.text;
  $("change").className = change.difference > 0 ? "up" : change.difference < 0 ? "down" : "";

  const zero = total === 0;
  $("series-zero").hidden = !zero;
  $("series-zero").textContent = zero
    ? `No “${q.event}” events in this window. Empty buckets are the grey marks on the baseline.`
    : "";

  $("series-caption").textContent = `${q.event}: events per ${q.unit} (reporting zone ${state.workspace.time_zone})`;
  const rows = data.map((point, index) => {
    const row = document.createElement("tr");
    row.dataset.index = String(index);
    row.dataset.time = point.time;
    row.dataset.count = String(point.count);
    if (point.count === 0) row.classList.add("zero");
    if (changed && changed.has(point.time)) row.classList.add("flash");
    const time = document.createElement("td");
    const stamp = document.createElement("time");
    stamp.dateTime = point.time;
    stamp.textContent = parseLabel(point.time).full;
    time.append(stamp);
    const count = document.createElement("td");
    count.className = "num";
    count.textContent = formatCount(point.count);
    row.append(time, count);
    return row;
  });
  $("series-table").tBodies[0].replaceChildren(...rows);

  const panel = $("series-panel");
  $("chart").setAttribute(
    "aria-label",
    `${q.chart === "bars" ? "Bar" : "Line"} chart of ${q.event} per ${q.unit}, ${units}, total ${formatCount(total)}`,
  );
  panel.hidden = false;
  eventChart.render({ labels: data.map((p) => p.time), values: data.map((p) => p.count), style: q.chart, unit: q.unit });
  $("series-loading").hidden = true;
  panelReady(panel, $("series-error"));
  panel.dataset.total = String(total);
  panel.dataset.previousTotal = String(previousTotal);
}

// Live mode -----------------------------------------------------------------------------
function startLive(q) {
  stopLive();
  state.live = { since: Date.now(), added: 0, busy: false, query: q };
  state.live.timer = setInterval(refreshLive, LIVE_MS);
  $("live-status").replaceChildren(`Live: refreshing every ${LIVE_MS / 1000} s since ${clockTime(state.live.since)}.`);
}

function stopLive() {
  if (state.live) clearInterval(state.live.timer);
  state.live = null;
  $("live-status").textContent = "";
}

async function refreshLive() {
  const live = state.live;
  if (!live || live.busy || document.hidden || Date.now() < state.pausedUntil) return;
  live.busy = true;
  const generation = state.generation;
  try {
    const q = live.query;
    const params = seriesParams(q);
    const { body: current } = await get("events/data_series", params);
    if (state.live !== live || generation !== state.generation) return;
    let previous = state.series.previous;
    const before = new Map(state.series.data.map((p) => [p.time, p.count]));
    if (!current.data.length || current.data[0].time !== state.series.data[0]?.time) {
      const ending = current.data.length ? current.data[0].time : "";
      previous = (await get("events/data_series", { ...params, ending_at: ending })).body.data;
      if (state.live !== live || generation !== state.generation) return;
    }
    const changed = new Set();
    let added = 0;
    for (const point of current.data) {
      const old = before.get(point.time) ?? 0;
      if (point.count > old) {
        changed.add(point.time);
        added += point.count - old;
      }
    }
    live.added += added;
    renderSeries(q, current.data, previous, changed);
    window.__series.live_added = live.added;
    const status = $("live-status");
    const now = clockTime(Date.now());
    if (added) {
      const fresh = document.createElement("span");
      fresh.className = "new";
      fresh.textContent = `+${formatCount(added)} new event${added === 1 ? "" : "s"}`;
      status.replaceChildren(`Live, updated ${now}: `, fresh, ` (${formatCount(live.added)} since ${clockTime(live.since)}).`);
    } else {
      status.replaceChildren(
        `Live, updated ${now}: no new events (${formatCount(live.added)} since ${clockTime(live.since)}).`,
      );
    }
    if ($("banner").dataset.kind === "warn" && Date.now() >= state.pausedUntil) hideBanner();
  } catch (error) {
    handleError(error);
  } finally {
    live.busy = false;
  }
}

// The segments view ---------------------------------------------------------------------
const segmentChart = new SeriesChart($("segment-chart"), {
  name: "Users",
  one: "user",
  other: "users",
  onHover: (index) => markRow($("segment-sizes-table"), index),
});

async function showSegments(params) {
  const generation = ++state.generation;
  $("segments-loading").hidden = false;
  const segments = await loadSegments(true);
  if (generation !== state.generation) return;
  $("segments-loading").hidden = true;
  if (state.segmentsError) {
    showBanner(state.segmentsError);
    $("segments-list").hidden = true;
    $("segment-panel").hidden = true;
    return;
  }
  $("segments-empty").hidden = segments.length > 0;
  $("segments-list").hidden = segments.length === 0;
  $("segment-panel").hidden = segments.length === 0;
  const selected = params.get("segment_id") ?? "";
  renderSegmentList(segments, selected);
  if (!segments.length) return;
  if (!selected) {
    params.set("segment_id", segments[0].id);
    navigate("segments", params, { replace: true });
    return;
  }
  await loadSegment(selected, params.get("length") ?? "30", generation);
}

function renderSegmentList(segments, selected) {
  const rows = segments.map((segment) => {
    const row = document.createElement("tr");
    row.dataset.segmentId = segment.id;
    if (segment.id === selected) row.setAttribute("aria-current", "true");
    const name = document.createElement("td");
    const button = document.createElement("button");
    button.type = "button";
    button.className = "seg-name";
    button.textContent = segment.name;
    button.setAttribute("aria-label", `Show sizes of ${segment.name}`);
    button.addEventListener("click", () => {
      const { params } = readHash();
      params.set("segment_id", segment.id);
      navigate("segments", params);
    });
    name.append(button);
    for (const tag of segment.tags) {
      const chip = document.createElement("span");
      chip.className = "tag";
      chip.textContent = tag;
      name.append(" ", chip);
    }
    const tracking = document.createElement("td");
    const badge = document.createElement("span");
    badge.className = `badge ${segment.analytics_tracking_enabled ? "on" : "off"}`;
    badge.textContent = segment.analytics_tracking_enabled ? "tracked" : "not tracked";
    tracking.append(badge);
    const events = document.createElement("td");
    if (segment.analytics_tracking_enabled) {
      const link = document.createElement("a");
      link.href = eventsLinkFor(segment.id);
      link.className = "to-events";
      link.textContent = "Events →";
      link.setAttribute("aria-label", `Events of ${segment.name}`);
      events.append(link);
    } else {
      events.textContent = "—";
      events.title = "Not tracked: no event series";
    }
    row.append(name, tracking, events);
    return row;
  });
  $("segments-table").tBodies[0].replaceChildren(...rows);
}

function eventsLinkFor(segmentId) {
  const params = new URLSearchParams();
  const event = state.lastEvent ?? state.events?.names[0];
  if (event) params.set("event", event);
  params.set("segment_id", segmentId);
  return hashFor("events", params);
}

async function loadSegment(segmentId, length, generation) {
  const segment = (state.segments ?? []).find((s) => s.id === segmentId);
  const panel = $("segment-panel");
  panel.setAttribute("aria-busy", "true");
  panel.dataset.state = "loading";
  $("segment-loading").hidden = false;
  $("segment-title").textContent = segment ? segment.name : segmentId;
  $("segment-length").value = length;
  const link = $("segment-events-link");
  link.hidden = !(segment && segment.analytics_tracking_enabled);
  link.href = eventsLinkFor(segmentId);
  try {
    const [sizes, details] = await Promise.all([
      get("segments/data_series", { segment_id: segmentId, length }),
      get("segments/details", { segment_id: segmentId }).catch((error) => {
        if (error instanceof ApiError && error.status === 403) return null; // optional
        throw error;
      }),
    ]);
    if (generation !== state.generation) return;
    const data = sizes.body.data;
    const description = details ? details.body.text_description || details.body.description : "";
    const tracking = segment && !segment.analytics_tracking_enabled
      ? " Not tracked: it has sizes but no event series."
      : "";
    $("segment-description").textContent = `${description ?? ""}${tracking}`.trim();
    const last = data.length ? data[data.length - 1].size : 0;
    const firstPoint = data.length ? data[0] : null;
    $("segment-size").textContent = formatCount(last);
    $("segment-change-label").textContent = firstPoint ? `Change since ${parseLabel(firstPoint.time).full}` : "Change";
    const change = formatChange(last, firstPoint ? firstPoint.size : 0);
    $("segment-change").textContent = firstPoint ? change.text.replace(/ \(new\)$/, "") : "—";
    $("segment-change").className = change.difference > 0 ? "up" : change.difference < 0 ? "down" : "";
    const rows = data.map((point, index) => {
      const row = document.createElement("tr");
      row.dataset.index = String(index);
      row.dataset.time = point.time;
      row.dataset.size = String(point.size);
      if (point.size === 0) row.classList.add("zero");
      const day = document.createElement("td");
      day.textContent = parseLabel(point.time).full;
      const size = document.createElement("td");
      size.className = "num";
      size.textContent = formatCount(point.size);
      row.append(day, size);
      return row;
    });
    $("segment-sizes-table").tBodies[0].replaceChildren(...rows);
    $("segment-chart").setAttribute("aria-label", `Line chart of the size of ${segment ? segment.name : segmentId} per day`);
    segmentChart.render({ labels: data.map((p) => p.time), values: data.map((p) => p.size), style: "line", unit: "day" });
    window.__segmentSeries = { segment_id: segmentId, length: Number(length), data: data.map((p) => ({ ...p })) };
    panelReady(panel, $("segment-error"));
  } catch (error) {
    if (generation === state.generation) panelFailed(panel, $("segment-error"), error);
    throw error;
  } finally {
    $("segment-loading").hidden = true;
  }
}

// Wiring ----------------------------------------------------------------------------------
function validLength(text) {
  return /^\d{1,3}$/.test(text) && Number(text) >= 1 && Number(text) <= 100;
}

function wire() {
  $("signin-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const key = $("api-key").value.trim();
    if (!plausibleKey(key)) {
      showSignIn(key ? "A key is printable ASCII without spaces." : "Paste an API key first.");
      return;
    }
    signIn(key).catch(handleError);
  });
  $("sign-out").addEventListener("click", () => signOut());
  $("banner-close").addEventListener("click", hideBanner);
  window.addEventListener("hashchange", route);

  $("event-controls").addEventListener("submit", (event) => event.preventDefault());
  $("unit-select").addEventListener("change", (event) => {
    const { params } = readHash();
    const length = params.get("length");
    // A length left at the other unit's default follows the unit.
    const other = event.target.value === "hour" ? "day" : "hour";
    const keep = length && length !== String(DEFAULT_LENGTH[other]);
    setEventQuery({ unit: event.target.value, length: keep ? length : "" });
  });
  $("length-input").addEventListener("change", (event) => {
    const text = event.target.value.trim();
    if (!validLength(text)) {
      event.target.setAttribute("aria-invalid", "true");
      showBanner("length must be a whole number from 1 to 100");
      return;
    }
    const unit = $("unit-select").value;
    setEventQuery({ length: text === String(DEFAULT_LENGTH[unit]) ? "" : text });
  });
  $("ending-input").addEventListener("change", (event) => {
    setEventQuery({ ending_at: event.target.value, live: event.target.value ? "" : readHash().params.get("live") });
  });
  $("ending-now").addEventListener("click", () => setEventQuery({ ending_at: "" }));
  $("app-select").addEventListener("change", (event) => setEventQuery({ app_id: event.target.value }));
  $("segment-select").addEventListener("change", (event) =>
    setEventQuery({ segment_id: event.target.value }),
  );
  for (const radio of document.querySelectorAll("input[name=chart]")) {
    radio.addEventListener("change", () => setEventQuery({ chart: radio.value }));
  }
  $("live-toggle").addEventListener("change", (event) =>
    setEventQuery(event.target.checked ? { live: true, ending_at: "" } : { live: "" }),
  );
  $("reload-events").addEventListener("click", () => {
    loadEvents(true).then(route, handleError);
  });

  $("download-csv").addEventListener("click", () => {
    const series = state.series;
    if (!series) return;
    const csv = toCsv(["time", "count"], series.data.map((p) => [p.time, p.count]));
    const last = series.data.length ? series.data[series.data.length - 1].time : "";
    const name = safeFileName("eventtally", series.event, series.unit, series.length, last.slice(0, 16));
    download(new Blob([csv], { type: "text/csv" }), `${name}.csv`);
  });
  $("download-png").addEventListener("click", async () => {
    const series = state.series;
    if (!series) return;
    const title = `${$("series-title").textContent} — ${$("series-window").textContent.split(" · previous")[0]}`;
    const blob = await eventChart.png(title);
    if (!blob) return;
    const last = series.data.length ? series.data[series.data.length - 1].time : "";
    download(blob, `${safeFileName("eventtally", series.event, series.unit, series.length, last.slice(0, 16))}.png`);
  });

  $("segment-length").addEventListener("change", (event) => {
    const text = event.target.value.trim();
    if (!validLength(text)) {
      event.target.setAttribute("aria-invalid", "true");
      showBanner("days must be a whole number from 1 to 100");
      return;
    }
    event.target.removeAttribute("aria-invalid");
    const { params } = readHash();
    if (text === "30") params.delete("length");
    else params.set("length", text);
    navigate("segments", params);
  });
}

wire();
if (session.key) signIn(session.key).catch(handleError);
else showSignIn();
