/* Responders' pages: focus an error when there is one, and upload files with a
 * progress bar (a slow connection should show that something is happening). Both
 * forms work without this script. */
(function () {
  "use strict";

  function init() {
    var error = document.querySelector("[data-autofocus]");
    if (error) error.focus();

    var form = document.querySelector("[data-upload]");
    if (!form || !window.XMLHttpRequest || !window.FormData) return;
    var bar = form.querySelector("[data-upload-progress]");
    var status = form.querySelector("[data-upload-status]");
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var request = new XMLHttpRequest();
      request.open("POST", form.action || window.location.href);
      bar.hidden = false;
      status.textContent = form.dataset.labelSending;
      request.upload.addEventListener("progress", function (e) {
        if (e.lengthComputable) bar.value = Math.round((100 * e.loaded) / e.total);
      });
      request.addEventListener("load", function () {
        if (request.status < 400) {
          window.location.href = request.responseURL || window.location.href;
        } else {
          document.open();
          document.write(request.responseText);
          document.close();
        }
      });
      request.addEventListener("error", function () {
        status.textContent = form.dataset.labelFailed;
        bar.hidden = true;
      });
      request.send(new FormData(form));
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
