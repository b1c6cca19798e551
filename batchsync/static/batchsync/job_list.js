/* batchsync job list: refreshes the rows of active jobs in place. Polls the admin's `rows/`
   fragment endpoint every few seconds while a listed job is active, and at once on a pushed event
   (live_events.js, the every-job stream); each answer holds the rows' cells rendered by the server. */
(function () {
  "use strict";

  const ACTIVE_MS = 3000;
  const PUSHED_MS = 15000; // while the event stream is up, polling only backs it up
  let pushed = false;
  let timer = null;
  let failures = 0;

  function markers() {
    return Array.from(document.querySelectorAll("#result_list [data-bs-job]"));
  }

  function anyActive() {
    return markers().some((node) => node.dataset.bsActive === "1");
  }

  function schedule(delay) {
    window.clearTimeout(timer);
    if (anyActive()) {
      timer = window.setTimeout(refresh, delay);
    }
  }

  function swap(marker, row) {
    const tr = marker.closest("tr");
    if (!tr) {
      return;
    }
    Object.keys(row.cells).forEach((name) => {
      const cell = tr.querySelector("td.field-" + name + ", th.field-" + name);
      if (cell && cell.innerHTML !== row.cells[name]) {
        cell.innerHTML = row.cells[name];
      }
    });
  }

  async function refresh() {
    const nodes = markers();
    if (!nodes.length) {
      return;
    }
    const ids = nodes.map((node) => node.dataset.bsJob);
    const url = nodes[0].dataset.bsRowsUrl + "?ids=" + ids.join(",");
    let delay = pushed ? PUSHED_MS : ACTIVE_MS;
    try {
      const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (!response.ok) {
        throw new Error("HTTP " + response.status);
      }
      const body = await response.json();
      nodes.forEach((node) => {
        const row = body.rows[node.dataset.bsJob];
        if (row) {
          swap(node, row);
        }
      });
      failures = 0;
    } catch (error) {
      failures += 1;
      delay = Math.min(ACTIVE_MS * Math.pow(2, failures), 60000);
    }
    schedule(delay);
  }

  function start() {
    const nodes = markers();
    if (!nodes.length) {
      return;
    }
    const listed = new Set(nodes.map((node) => node.dataset.bsJob));
    let pending = null;
    if (window.batchsyncLiveEvents) {
      window.batchsyncLiveEvents.follow(
        nodes[0].dataset.bsEventsUrl,
        () => {
          if (pending === null) {
            pending = window.setTimeout(() => {
              pending = null;
              window.clearTimeout(timer);
              refresh();
            }, 200);
          }
        },
        (isUp) => {
          pushed = isUp;
          document.documentElement.dataset.bsPush = isUp ? "on" : "off";
        },
      );
    }
    document.documentElement.dataset.bsListed = String(listed.size);
    schedule(ACTIVE_MS);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
