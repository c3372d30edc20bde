/* The console's phone section: refreshed every few seconds so ringing and missed calls
 * show up without a reload. A refresh waits while focus is inside the section, so a
 * keyboard user is never thrown out of the button they are on; a change in the counts
 * is announced to screen readers. */
(function () {
  "use strict";
  var EVERY_MS = 3000;

  function section() { return document.querySelector("[data-calls-section]"); }

  function announcer() {
    var region = document.getElementById("calls-announcer");
    if (!region) {
      region = document.createElement("div");
      region.id = "calls-announcer";
      region.className = "visually-hidden";
      region.setAttribute("aria-live", "polite");
      document.body.appendChild(region);
    }
    return region;
  }

  function refresh() {
    var current = section();
    if (!current || current.contains(document.activeElement)) return;
    var url = current.getAttribute("data-refresh-url") + window.location.search;
    fetch(url, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        var now = section();
        if (!html || !now || now.contains(document.activeElement)) return;
        var holder = document.createElement("div");
        holder.innerHTML = html;
        var fresh = holder.querySelector("[data-calls-section]");
        if (!fresh) return;
        var before = now.getAttribute("data-summary");
        now.replaceWith(fresh);
        var after = fresh.getAttribute("data-summary");
        if (after !== before) announcer().textContent = after;
      })
      .catch(function () { /* the next round tries again */ });
  }

  function start() { if (section()) window.setInterval(refresh, EVERY_MS); }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
