/* Incident and report pages follow live changes to the record they show. The panel is
 * refreshed in place unless the dispatcher is in the middle of a form; then a notice
 * offers the refresh instead. */
(function () {
  "use strict";

  function init() {
    var root = document.querySelector("[data-live-detail]");
    if (!root || !window.EventSource) return;
    var kind = root.dataset.kind;
    var id = root.dataset.object;
    // Live refreshes replace the body of the page only, so a message from the
    // dispatcher's own last action stays where it is.
    var panelSelector = kind === "incident" ? "#incident-body" : "#report-body";

    function busy() {
      var active = document.activeElement;
      var panel = document.querySelector(panelSelector);
      if (!panel || !active || !panel.contains(active)) return false;
      return ["INPUT", "TEXTAREA", "SELECT"].indexOf(active.tagName) !== -1;
    }

    function refresh() {
      var notice = document.querySelector("[data-stale-notice]");
      if (notice) notice.hidden = true;
      if (!window.htmx) { window.location.reload(); return; }
      window.htmx.ajax("GET", window.location.pathname, { target: panelSelector, select: panelSelector, swap: "outerHTML" });
    }

    document.addEventListener("click", function (event) {
      if (event.target.closest("[data-refresh]")) refresh();
    });

    function changed(event) {
      var data = JSON.parse(event.data);
      if (data.id !== id) return;
      if (busy()) {
        var notice = document.querySelector("[data-stale-notice]");
        if (notice) notice.hidden = false;
      } else {
        refresh();
      }
    }

    var source = new EventSource(root.dataset.eventsUrl);
    source.addEventListener(kind, changed);
    source.addEventListener("error", function () {
      var stopped = document.querySelector("[data-stream-stopped]");
      if (stopped) stopped.hidden = source.readyState !== EventSource.CLOSED;
    });
    window.addEventListener("pagehide", function () { source.close(); });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
