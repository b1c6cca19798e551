/* batchsync job page. The server renders everything; this file only fetches fragments and swaps
   them in by id: refresh() (the live fragments, from the page's data-live-url), a month under its
   year's strip, a day's detail beside its month. Plus the filters and the selection of days to
   re-run. Push (live_events.js) calls window.batchsyncJobPage.refresh() on each of the job's events
   and sets window.batchsyncJobPage.pushed while its stream is up: polling then slows down. */
(function () {
  "use strict";

  const root = document.querySelector(".bs-job[data-live-url]");
  if (!root) {
    return;
  }
  const grid = document.getElementById("bs-calendar");
  const selectMode = document.getElementById("bs-select-mode");
  const rerunForm = document.getElementById("bs-rerun");
  const picked = new Set();
  let selected = null; // the day whose detail is shown
  let since = root.dataset.since;
  let failures = 0;
  let timer = null;
  let polling = false; // a refresh is in flight: a pushed one waits for it, then runs once
  let refreshAgain = false;
  const page = (window.batchsyncJobPage = { pushed: false, refresh: refreshNow });

  function parse(html) {
    const template = document.createElement("template");
    template.innerHTML = html;
    return template.content;
  }

  async function getHtml(url) {
    const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } });
    if (response.status === 401 || response.redirected) {
      window.location.reload(); // the session ended: the admin sends to its login form
    }
    if (!response.ok) {
      throw new Error(url + ": HTTP " + response.status);
    }
    return response.text();
  }

  function ownText(element) {
    return Array.from(element.childNodes)
      .filter((child) => child.nodeType === Node.TEXT_NODE)
      .map((child) => child.data)
      .join("");
  }

  // Put `node` in place of `old`, touching only what differs: a button or a link that did not
  // change stays the same element (a click on it is never lost to a refresh), a bar's width
  // changes in place (its transition runs).
  function patch(old, node) {
    if (old.isEqualNode(node)) {
      return;
    }
    const sameShape =
      old.tagName === node.tagName &&
      old.children.length === node.children.length &&
      old.children.length > 0 &&
      ownText(old) === ownText(node);
    if (!sameShape) {
      old.replaceWith(node);
      return;
    }
    Array.from(old.attributes).forEach((attribute) => {
      if (!node.hasAttribute(attribute.name) && attribute.name !== "open") {  // a <details> the user opened
        old.removeAttribute(attribute.name);
      }
    });
    Array.from(node.attributes).forEach((attribute) => {
      if (old.getAttribute(attribute.name) !== attribute.value) {
        old.setAttribute(attribute.name, attribute.value);
      }
    });
    const fresh = Array.from(node.children);
    Array.from(old.children).forEach((child, index) => patch(child, fresh[index]));
  }

  function swap(content) {
    Array.from(content.children).forEach((node) => {
      const old = node.id ? document.getElementById(node.id) : null;
      if (old) {
        patch(old, node);
      }
    });
    markPicked();
  }

  function openMonths() {
    return Array.from(grid.querySelectorAll(".bs-month[data-month]")).map((node) => node.dataset.month);
  }

  // The one refresh entry point: summary, fields, legend, the years and open months that changed
  // since the last refresh, and the errors panel when it changed.
  async function refresh() {
    const errors = document.getElementById("bs-errors-panel");
    const query = new URLSearchParams({
      since: since || "",
      open: openMonths().join(","),
      errors: errors ? errors.dataset.errorsKey : "",
      status: root.dataset.status,
    });
    const content = parse(await getHtml(root.dataset.liveUrl + "?" + query));
    const state = content.firstElementChild;
    state.remove();
    since = state.dataset.since;
    root.dataset.status = state.dataset.status;
    root.dataset.finished = state.dataset.finished;
    swap(content);
    return state.dataset;
  }

  // A push: refresh now, or right after the refresh in flight (never two at once).
  function refreshNow() {
    if (polling) {
      refreshAgain = true;
      return;
    }
    window.clearTimeout(timer);
    tick();
  }

  async function tick() {
    let delay = page.pushed ? 10000 : 1000;
    polling = true;
    try {
      const state = await refresh();
      failures = 0;
      if (state.finished === "1") {
        polling = false;
        return; // a finished job never changes again
      }
      if (!page.pushed && (state.status === "paused" || state.status === "queued")) {
        delay = 5000;
      }
    } catch (error) {
      failures += 1;
      delay = Math.min(1000 * Math.pow(2, failures), 30000);
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

  async function openMonth(month) {
    let panel = document.getElementById("bs-month-" + month);
    if (!panel) {
      panel = parse(await getHtml(root.dataset.monthUrl + "?month=" + month)).firstElementChild;
      const area = document.getElementById("bs-open-" + month.slice(0, 4));
      const after = Array.from(area.querySelectorAll(".bs-month")).find((node) => node.dataset.month > month);
      area.insertBefore(panel, after || null);
      markPicked();
    }
    return panel;
  }

  async function showDay(date) {
    const panel = await openMonth(date.slice(0, 7));
    const detail = parse(await getHtml(root.dataset.dayUrl + "?date=" + date)).firstElementChild;
    const old = document.getElementById("bs-day-detail");
    if (old) {
      old.remove();
    }
    panel.after(detail); // beside its month (below it on a phone)
    selected = date;
    markPicked();
    detail.scrollIntoView({ block: "nearest" });
  }

  function stripDate(cell) {
    const index = Array.prototype.indexOf.call(cell.parentElement.children, cell);
    return cell.parentElement.dataset.m + "-" + String(index + 1).padStart(2, "0");
  }

  function daysBetween(first, last) {
    const days = [];
    const day = new Date(first + "T00:00:00Z");
    const end = new Date(last + "T00:00:00Z");
    while (day <= end) {
      days.push(day.toISOString().slice(0, 10));
      day.setUTCDate(day.getUTCDate() + 1);
    }
    return days;
  }

  function pick(days) {
    const add = days.some((day) => !picked.has(day)); // a second click on a picked set drops it
    days.forEach((day) => (add ? picked.add(day) : picked.delete(day)));
    markPicked();
  }

  function markPicked() {
    grid.querySelectorAll(".bs-day[data-date]").forEach((cell) => {
      cell.classList.toggle("bs-day--picked", picked.has(cell.dataset.date));
      cell.classList.toggle("bs-day--selected", cell.dataset.date === selected);
    });
    grid.querySelectorAll(".bs-strip .m[data-m]").forEach((month) => {
      if (!picked.size && !month.querySelector(".p")) {
        return;
      }
      Array.from(month.children).forEach((cell, index) => {
        const day = month.dataset.m + "-" + String(index + 1).padStart(2, "0");
        cell.classList.toggle("p", picked.has(day));
      });
    });
    if (rerunForm) {
      const days = Array.from(picked).sort();
      rerunForm.hidden = !days.length;
      document.getElementById("bs-rerun-days").value = days.join(",");
      document.getElementById("bs-rerun-count").textContent = days.length
        ? days.length + " × " + days[0] + (days.length > 1 ? " … " + days[days.length - 1] : "")
        : "";
    }
  }

  grid.addEventListener("click", (event) => {
    const target = event.target;
    const selecting = Boolean(selectMode && selectMode.checked);
    if (target.closest("[data-close]")) {
      const closed = target.closest(".bs-month, .bs-day-detail");
      if (closed.id === "bs-day-detail" || closed.dataset.month === (selected || "").slice(0, 7)) {
        selected = null;
      }
      closed.remove();
      return;
    }
    const year = target.closest("[data-select-year]");
    if (year && selecting) {
      const row = year.closest(".bs-year");
      pick(daysBetween(row.dataset.first, row.dataset.last));
      return;
    }
    if (target.closest("[data-select-month]")) {
      const month = target.closest(".bs-month");
      pick(daysBetween(month.dataset.first, month.dataset.last));
      return;
    }
    const cell = target.closest(".bs-day[data-date]");
    const stripCell = /^[IB]$/.test(target.tagName) && target.parentElement.dataset.m ? target : null;
    // A strip cell narrower than a finger or a pointer can aim (a phone: under 1 px) opens its
    // month only; a day is then picked from the month's calendar.
    const aimable = stripCell && !stripCell.classList.contains("V") && stripCell.getBoundingClientRect().width >= 3;
    const date = cell ? cell.dataset.date : aimable ? stripDate(stripCell) : null;
    const month = target.closest(".bs-strip .m[data-m]");
    if (date || month) {
      event.preventDefault();
    }
    if (date && selecting) {
      pick([date]);
    } else if (date) {
      showDay(date).catch((error) => window.console && window.console.warn(error));
    } else if (month) {
      openMonth(month.dataset.m)
        .then((panel) => panel.scrollIntoView({ block: "nearest" }))
        .catch((error) => window.console && window.console.warn(error));
    }
  });

  grid.addEventListener("keydown", (event) => {
    const cell = event.target.closest(".bs-day[data-date]");
    if (cell && (event.key === "Enter" || event.key === " ")) {
      event.preventDefault();
      cell.click();
    }
  });

  document.querySelectorAll("[data-filter]").forEach((box) => {
    box.addEventListener("change", () => grid.classList.toggle("bs-only-" + box.dataset.filter, box.checked));
  });
  if (selectMode) {
    selectMode.addEventListener("change", () => grid.classList.toggle("bs-selecting", selectMode.checked));
  }
  const clear = document.getElementById("bs-rerun-clear");
  if (clear) {
    clear.addEventListener("click", () => {
      picked.clear();
      markPicked();
    });
  }

  document.addEventListener("bs:refresh", () => refreshNow());
  if (root.dataset.finished !== "1") {
    timer = window.setTimeout(tick, 1000);
  }
})();
