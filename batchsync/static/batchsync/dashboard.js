/* batchsync dashboard: re-fetches the live panel (an HTML fragment) and swaps it in. */
(function () {
  "use strict";

  const container = document.getElementById("bs-dashboard-live");
  if (!container) {
    return;
  }
  const url = container.dataset.panelUrl;
  const ACTIVE_MS = 1500;
  const IDLE_MS = 5000;
  let failures = 0;

  function delay() {
    const panel = container.querySelector(".bs-dashboard-panel");
    return panel && panel.dataset.active === "1" ? ACTIVE_MS : IDLE_MS;
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
    window.setTimeout(tick, wait);
  }

  window.setTimeout(tick, delay());
})();
