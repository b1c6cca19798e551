/* batchsync dashboard: re-fetches the live panel (an HTML fragment) and swaps it in: at once when
   the every-job event stream (live_events.js) reports a change, else by polling (slowly while the
   stream is up, at the usual pace without it). */
(function () {
  "use strict";

  const container = document.getElementById("bs-dashboard-live");
  if (!container) {
    return;
  }
  const url = container.dataset.panelUrl;
  const ACTIVE_MS = 1500;
  const IDLE_MS = 5000;
  const PUSHED_MS = 15000; // a safety net while events arrive
  let failures = 0;
  let pushed = false;
  let timer = null;

  function delay() {
    if (pushed) {
      return PUSHED_MS;
    }
    const panel = container.querySelector(".bs-dashboard-panel");
    return panel && panel.dataset.active === "1" ? ACTIVE_MS : IDLE_MS;
  }

  function schedule(wait) {
    window.clearTimeout(timer);
    timer = window.setTimeout(tick, wait);
  }

  async function tick() {
    let wait = delay();
    try {
      const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } });
      if (response.status === 401) {
        window.location.reload(); // session ended: the page sends to the login form
        return;
      }
      if (!response.ok) {
        throw new Error("HTTP " + response.status);
      }
      container.innerHTML = await response.text();
      failures = 0;
      wait = delay();
    } catch (error) {
      failures += 1;
      wait = Math.min(IDLE_MS * Math.pow(2, failures), 60000);
    }
    schedule(wait);
  }

  const live = window.batchsyncLiveEvents;
  if (live && container.dataset.eventsUrl) {
    live.follow(
      container.dataset.eventsUrl,
      () => schedule(100), // one refresh for a burst of day events
      (isUp) => {
        pushed = isUp;
        document.documentElement.dataset.bsPush = isUp ? "on" : "off";
      },
    );
  }
  schedule(delay());
})();
