/* The public forms with a map pin (report, alert sign-up): pin status messages, "use my
 * location" and "remove the pin".
 * The form works without JavaScript; the map needs it. */
(function () {
  "use strict";

  function init() {
    var form = document.querySelector(".report-form");
    if (!form) return;
    var mapEl = form.querySelector("[data-map]");
    var status = form.querySelector("[data-pin-status]");
    var geolocate = form.querySelector("[data-geolocate]");
    var clear = form.querySelector("[data-clear-pin]");
    var labels = form.querySelector("[data-map-picker]").dataset;

    function rrmap() { return window.RRMapFor ? window.RRMapFor(mapEl) : null; }

    mapEl.addEventListener("rr:pinned", function () { status.textContent = labels.pinSet; });
    mapEl.addEventListener("rr:unpinned", function () { status.textContent = labels.pinCleared; });

    clear.addEventListener("click", function () {
      var m = rrmap();
      if (m && m.clearPin) m.clearPin();
    });

    if (navigator.geolocation && window.isSecureContext) {
      geolocate.hidden = false;
      geolocate.addEventListener("click", function () {
        status.textContent = labels.locating;
        navigator.geolocation.getCurrentPosition(
          function (pos) {
            var m = rrmap();
            if (m && m.pick) {
              m.pick(pos.coords.latitude, pos.coords.longitude);
              m.map.setView([pos.coords.latitude, pos.coords.longitude], 16);
            }
          },
          function () { status.textContent = labels.locateFailed; },
          { enableHighAccuracy: true, timeout: 15000, maximumAge: 60000 }
        );
      });
    }

    var summary = document.querySelector("[data-autofocus]");
    if (summary) summary.focus();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
