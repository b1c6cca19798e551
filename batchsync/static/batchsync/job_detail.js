/* batchsync job page: follows a job live by polling the REST API's progress endpoint and the
   admin's calendar endpoint, without reloading the page. No dependencies. */
(function () {
  "use strict";

  const configNode = document.getElementById("bs-live-config");
  if (!configNode) {
    return;
  }
  const config = JSON.parse(configNode.textContent);
  const root = document.querySelector(".bs-job");
  const cells = Array.from(document.querySelectorAll("#bs-calendar .bs-day[data-date]"));
  const detailPanel = document.getElementById("bs-day-detail");
  const liveBadge = document.getElementById("bs-live");
  let status = config.status;
  let lastKey = null;
  let since = null;
  let details = {};
  let errorIds = "";
  let failures = 0;
  // Push (live_events.js): `refresh()` on each event; while the stream is up, polling slows down.
  let timer = null;
  let polling = false;
  let refreshAgain = false;
  const page = (window.batchsyncJobPage = { pushed: false, refresh: refreshNow });

  function refreshNow() {
    if (polling) {
      refreshAgain = true;
      return;
    }
    window.clearTimeout(timer);
    tick();
  }

  function isFinished(value) {
    return config.finishedStatuses.indexOf(value) >= 0;
  }

  function formatTime(iso) {
    // The API sends local server time with its offset; show it as the server does.
    if (!iso) {
      return "";
    }
    const match = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})/.exec(iso);
    return match ? match[1] + " " + match[2] : iso;
  }

  function formatDuration(seconds) {
    if (seconds === null || seconds === undefined) {
      return "";
    }
    // The server's translated unit formats (format_duration's): "%(minutes)sm %(seconds)ss", ...
    const formats = config.durationFormats;
    const fill = (text, values) => text.replace(/%\((\w+)\)s/g, (match, name) => values[name]);
    if (seconds < 60) {
      return fill(formats.seconds, { seconds: seconds.toFixed(1) });
    }
    const whole = Math.round(seconds);
    const hours = Math.floor(whole / 3600);
    const minutes = Math.floor((whole % 3600) / 60);
    const pad = (n) => String(n).padStart(2, "0");
    const values = { hours: hours, minutes: hours ? pad(minutes) : minutes, seconds: pad(whole % 60) };
    return fill(hours ? formats.hours : formats.minutes, values);
  }

  function setField(name, value) {
    document.querySelectorAll('[data-field="' + name + '"]').forEach((node) => {
      node.textContent = value === null || value === undefined ? "" : String(value);
    });
  }

  function replaceStatusClass(node, prefix, value) {
    Array.from(node.classList)
      .filter((name) => name.indexOf(prefix) === 0)
      .forEach((name) => node.classList.remove(name));
    node.classList.add(prefix + value);
  }

  function applyOperations(allowed) {
    // The server sends the operations this user may apply to the job now (status and permissions).
    document.querySelectorAll("#bs-operations form[data-operation]").forEach((form) => {
      form.hidden = allowed.indexOf(form.dataset.operation) < 0;
    });
  }

  function applyProgress(data) {
    status = data.status;
    root.dataset.status = status;
    const statusNode = document.getElementById("bs-status");
    replaceStatusClass(statusNode, "bs-status--", status);
    setField("status", config.statusLabels[status] || status);
    setField("message", data.message);
    setField("total", data.total);
    setField("current", data.current);
    setField("success", data.success);
    setField("failed", data.failed);
    setField("skipped", data.skipped);
    setField("current_date", data.current_date || "");
    setField("rows_loaded", data.rows_loaded);
    setField("start_time", formatTime(data.start_time));
    setField("end_time", formatTime(data.end_time));
    setField("duration_seconds", formatDuration(data.duration_seconds));
    setField("estimated_completion", formatTime(data.estimated_completion));
    setField("progress_percent", Number(data.progress_percent || 0).toFixed(1) + "%");
    // The bar shows days loaded of days to load; the server words the headline.
    setField("load_summary", data.load_summary);
    setField("days_loaded", data.days_loaded);
    setField("days_to_load", data.days_to_load);
    const percent = Number(data.load_percent || 0);
    setField("load_percent", percent.toFixed(1) + "%");
    const progress = document.getElementById("bs-progress");
    progress.setAttribute("aria-valuenow", String(percent));
    const bar = progress.querySelector(".bs-progress__bar");
    bar.style.width = percent + "%";
    replaceStatusClass(bar, "bs-progress__bar--", status);
  }

  function showDetail(cell) {
    const date = cell.dataset.date;
    const state = cell.dataset.state;
    const info = details[date] || {};
    detailPanel.hidden = false;
    detailPanel.querySelector('[data-detail="date"]').textContent = date;
    detailPanel.querySelector('[data-detail="state"]').textContent = config.stateLabels[state] || state;
    detailPanel.querySelector('[data-detail="rows"]').textContent = info.rows === undefined ? "-" : info.rows;
    detailPanel.querySelector('[data-detail="duration"]').textContent = info.duration || "-";
    detailPanel.querySelector('[data-detail="attempts"]').textContent =
      info.attempts === undefined ? "0" : info.attempts;
    detailPanel.querySelector('[data-detail="error"]').textContent = info.error || "-";
    const warnings = detailPanel.querySelector('[data-detail="warnings"]');
    if (warnings) {
      warnings.textContent = cell.dataset.warnings || "-";  // the data checks' warnings on the day
    }
    cells.forEach((other) => other.classList.toggle("bs-day--selected", other === cell));
  }

  function renderErrors(errors) {
    const ids = errors.map((error) => error.id).join(",");
    if (ids === errorIds) {
      return;
    }
    errorIds = ids;
    const container = document.getElementById("bs-errors");
    if (!errors.length) {
      return;
    }
    container.textContent = "";
    errors.forEach((error) => {
      const item = document.createElement("details");
      item.className = "bs-error";
      item.dataset.errorId = String(error.id);
      const summary = document.createElement("summary");
      const date = document.createElement("span");
      date.className = "bs-error__date";
      date.textContent = error.date || "";
      const meta = document.createElement("span");
      meta.className = "bs-muted";
      let where = error.file ? " · " + error.file + (error.line ? ":" + error.line : "") : "";
      meta.textContent = error.time + " · #" + error.attempt + where;
      const text = document.createElement("span");
      text.className = "bs-error__text";
      text.textContent = error.error;
      summary.append(date, " ", meta, " ", text);
      item.append(summary);
      if ("traceback" in error) {  // only for users allowed to see tracebacks
        const trace = document.createElement("pre");
        trace.className = "bs-traceback";
        trace.textContent = error.traceback || "-";
        item.append(trace);
      }
      container.append(item);
    });
  }

  function renderLockWaits(waits) {
    // Days waiting on another database session's lock (the server's sentence, filled in here).
    const container = document.getElementById("bs-lock-waits");
    if (!container) {
      return;
    }
    container.textContent = "";
    waits.forEach((wait) => {
      const values = {
        date: wait.date,
        seconds: wait.waiting_seconds,
        lock: wait.lock,
        pids: wait.blocking_pids.join(", "),
      };
      const note = document.createElement("p");
      note.className = "bs-lock-wait errornote";
      note.dataset.lockWait = wait.date;
      note.textContent = config.lockWaitText.replace(/%\((\w+)\)s/g, (match, name) =>
        name in values ? String(values[name]) : match
      );
      wait.blockers.forEach((blocker) => {
        const code = document.createElement("code");
        code.textContent =
          "pid " + blocker.pid + " " + (blocker.application_name || "-") + " · " + (blocker.state || "-");
        note.append(" ", code);
      });
      container.append(note);
    });
  }

  function applyCalendar(data) {
    Object.assign(details, data.details);
    const counts = {};
    cells.forEach((cell, index) => {
      const state = config.stateCodes[data.states.charAt(index)] || cell.dataset.state;
      counts[state] = (counts[state] || 0) + 1;
      if (cell.dataset.state !== state) {
        replaceStatusClass(cell, "bs-day--", state);
        cell.dataset.state = state;
        if (!data.details[cell.dataset.date]) {
          cell.title = cell.dataset.date + " · " + (config.stateLabels[state] || state);
        }
      }
      const info = data.details[cell.dataset.date];
      if (info) {
        cell.title = info.tooltip;
        // The data checks' warnings on the day: a marker on the cell, listed in its detail.
        cell.classList.toggle("bs-warned", Boolean(info.warnings));
        if (info.warnings) {
          cell.dataset.warnings = info.warnings;
        } else {
          delete cell.dataset.warnings;
        }
      }
    });
    document.querySelectorAll("[data-state-count]").forEach((node) => {
      node.textContent = String(counts[node.dataset.stateCount] || 0);
    });
    renderErrors(data.errors);
    applyOperations(data.operations);
    const count = document.getElementById("bs-errors-count");
    if (count) {
      count.textContent = "(" + data.errors_total + ")";
    }
    since = data.since;
  }

  async function getJson(url) {
    const response = await fetch(url, {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    });
    if (!response.ok) {
      throw new Error(url + ": HTTP " + response.status);
    }
    return response.json();
  }

  async function refreshCalendar() {
    const url = config.calendarUrl + (since ? "?since=" + encodeURIComponent(since) : "");
    applyCalendar(await getJson(url));
  }

  async function tick() {
    let delay = page.pushed ? config.pollMs * 10 : config.pollMs;
    polling = true;
    try {
      const body = await getJson(config.progressUrl);
      const data = body.data;
      const key = [data.status, data.current, data.current_date, data.failed, data.success].join("|");
      if (key !== lastKey) {
        await refreshCalendar(); // first, so the numbers and the calendar change together
        lastKey = key;
      }
      applyProgress(data);
      renderLockWaits(data.lock_waits || []);
      failures = 0;
      if (liveBadge) {
        liveBadge.hidden = isFinished(status);
      }
      if (isFinished(status)) {
        polling = false;
        return; // a finished job never changes again
      }
      if (status === "paused" || status === "queued") {
        delay = config.pollMs * 5;
      }
    } catch (error) {
      failures += 1;
      delay = Math.min(config.pollMs * Math.pow(2, failures), 30000);
      if (window.console) {
        window.console.warn("batchsync: live update failed", error);
      }
    }
    polling = false;
    if (refreshAgain) {
      refreshAgain = false;
      delay = 0;
    }
    timer = window.setTimeout(tick, delay);
  }

  cells.forEach((cell) => {
    cell.addEventListener("click", () => showDetail(cell));
    cell.addEventListener("keydown", (event) => {
      if (event.key === "Enter" || event.key === " ") {
        event.preventDefault();
        showDetail(cell);
      }
    });
  });
  refreshCalendar()
    .catch(() => undefined)
    .then(tick);
})();
