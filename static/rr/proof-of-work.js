/* The report form's proof-of-work check (the ALTCHA widget, vendored in
 * static/vendor/altcha): our translated texts, the solver worker loaded from our own
 * origin (the CSP allows workers from 'self' only, never blob:), a spoken status for
 * screen readers, and a send button that waits for the check instead of failing.
 * Without JavaScript the form says to text or call instead. */
(function () {
  "use strict";

  function init() {
    var widget = document.querySelector("altcha-widget");
    var configEl = document.getElementById("pow-config");
    if (!widget || !configEl || !window.$altcha) return;
    var config = JSON.parse(configEl.textContent);
    var form = widget.closest("form");
    var status = document.querySelector("[data-pow-status]");
    var waitingSubmitter = null;
    var waiting = false;

    window.$altcha.algorithms.set("PBKDF2/SHA-256", function () {
      return new Worker(config.worker);
    });
    window.$altcha.i18n.set(config.language, config.strings);

    widget.addEventListener("statechange", function (ev) {
      var state = ev.detail && ev.detail.state;
      if (status && config.announce[state]) status.textContent = config.announce[state];
      if (state === "expired") widget.verify();
      if (state === "verified" && waiting) {
        waiting = false;
        // Let the widget write its payload into the form before sending it.
        window.setTimeout(function () { form.requestSubmit(waitingSubmitter); }, 0);
      }
    });

    form.addEventListener("submit", function (ev) {
      var state = widget.getState ? widget.getState() : "verified";
      if (state === "verified") return;
      ev.preventDefault();
      waiting = true;
      waitingSubmitter = ev.submitter || null;
      if (status) status.textContent = config.announce.verifying;
      if (state !== "verifying") widget.verify();
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
