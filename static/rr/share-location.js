/* The responder page: share an approximate location (rounded on the server). */
(function () {
  "use strict";
  function init() {
    var form = document.querySelector("[data-share-location]");
    if (!form || !navigator.geolocation || !window.isSecureContext) return;
    var button = form.querySelector("[data-share-button]");
    var status = form.querySelector("[data-share-status]");
    button.hidden = false;
    button.addEventListener("click", function () {
      status.textContent = form.dataset.labelLocating;
      navigator.geolocation.getCurrentPosition(function (pos) {
        form.elements.lat.value = pos.coords.latitude.toFixed(4);
        form.elements.lng.value = pos.coords.longitude.toFixed(4);
        form.submit();
      }, function () {
        status.textContent = form.dataset.labelFailed;
      }, { enableHighAccuracy: false, timeout: 15000, maximumAge: 300000 });
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
