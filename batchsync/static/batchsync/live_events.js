/* batchsync push: follows a server-sent event stream (the API's .../events) and calls back on each
   job or day event. Where there is no stream (a WSGI server answers 204, a proxy cuts it, an old
   browser) `onState(false)` tells the page to keep polling at its usual pace. No dependencies. */
(function () {
  "use strict";

  function follow(url, onEvent, onState) {
    let up = false;
    function setUp(value) {
      if (value !== up) {
        up = value;
        onState(up);
      }
    }
    if (!window.EventSource || !url) {
      onState(false);
      return null;
    }
    const source = new EventSource(url, { withCredentials: true });
    source.addEventListener("open", () => setUp(true));
    source.addEventListener("error", () => setUp(false)); // the browser retries, after `retry:` ms
    ["job", "day"].forEach((kind) =>
      source.addEventListener(kind, (event) => {
        setUp(true);
        let data = null;
        try {
          data = JSON.parse(event.data);
        } catch (error) {
          return;
        }
        onEvent(kind, data);
      }),
    );
    return source;
  }

  window.batchsyncLiveEvents = { follow: follow };

  // The job page (job_detail.js): refresh on each of the job's events, poll slowly while pushed.
  const configNode = document.getElementById("bs-live-config");
  const page = window.batchsyncJobPage;
  if (!configNode || !page) {
    return;
  }
  const config = JSON.parse(configNode.textContent);
  if ((config.finishedStatuses || []).indexOf(config.status) >= 0) {
    return; // a finished job never changes again
  }
  let pending = null;
  const queuePlace = document.getElementById("bs-queue-place");
  follow(
    config.progressUrl + "/events",
    (kind, data) => {
      if (queuePlace && data.task_id === config.taskId && data.status !== "queued") {
        queuePlace.hidden = true; // dequeued: its place (server-rendered) no longer holds
      }
      // Days of a parallel job commit close together: one refresh for a burst of events.
      if (pending === null) {
        pending = window.setTimeout(() => {
          pending = null;
          page.refresh();
        }, 100);
      }
    },
    (isUp) => {
      page.pushed = isUp;
      document.documentElement.dataset.bsPush = isUp ? "on" : "off";
    },
  );
})();
