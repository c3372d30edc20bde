/* Staff pages: after an HTMX swap, move focus to the result so keyboard and screen
 * reader users hear what happened. */
(function () {
  "use strict";
  document.addEventListener("htmx:afterSwap", function (event) {
    var target = event.detail.target;
    var focus = document.querySelector("[data-focus-after-swap]") ||
      (target && target.querySelector && target.querySelector(".error-summary, .field-error"));
    if (focus) {
      if (!focus.hasAttribute("tabindex")) focus.setAttribute("tabindex", "-1");
      focus.focus();
    }
  });
})();
