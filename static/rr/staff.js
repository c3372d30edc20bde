/* Staff pages: move focus to the result of an action, so keyboard and screen reader
 * users hear what happened, whether the page was swapped by HTMX or loaded after a
 * redirect. */
(function () {
  "use strict";

  function focusResult(root) {
    var focus = document.querySelector("[data-focus-after-swap]") ||
      (root && root.querySelector && root.querySelector(".error-summary, .field-error"));
    if (focus) {
      if (!focus.hasAttribute("tabindex")) focus.setAttribute("tabindex", "-1");
      focus.focus();
    }
  }

  document.addEventListener("htmx:afterSwap", function (event) { focusResult(event.detail.target); });
  function onLoad() { focusResult(document.getElementById("main")); }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", onLoad);
  else onLoad();
})();
