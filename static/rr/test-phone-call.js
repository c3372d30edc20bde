/* The test phone's call mode: keep the caller's side and the dispatchers' phones up to
 * date while the page is open, and press their buttons without reloading the page.
 *
 * Every few seconds each panel is fetched again (the caller's with its form, so the
 * hold step plays). A button's form is sent with fetch and the page it leads to is read
 * the same way. Either way only the parts that changed are replaced, so screen readers
 * hear what is new and a keyboard user keeps their place; new lines of a call log are
 * appended to it (an aria-live list), and after a button focus goes where the page
 * says (data-focus-after-swap), as after a reload. Without this script every button is
 * an ordinary form. */
(function () {
  "use strict";
  var EVERY_MS = 3000;
  var MAX_LINES = 40;
  // A button pressed since a poll started makes that poll's answer out of date.
  var generation = 0;
  var pressing = false;

  function panels() { return document.querySelectorAll("[data-live-panel]"); }

  // Two renderings of a part are the same if they differ only in CSRF tokens (masked
  // afresh on every render) and in where the page put focus after loading.
  function signature(element) {
    var copy = element.cloneNode(true);
    copy.removeAttribute("data-focus-after-swap");
    copy.querySelectorAll("input[name=csrfmiddlewaretoken]").forEach(function (input) {
      input.removeAttribute("value");
    });
    copy.querySelectorAll("[data-focus-after-swap]").forEach(function (node) {
      node.removeAttribute("data-focus-after-swap");
    });
    return copy.outerHTML;
  }

  function focusable(element) {
    if (!element.hasAttribute("tabindex") && !element.matches("a, button, input, select, textarea")) {
      element.setAttribute("tabindex", "-1");
    }
    return element;
  }

  function swap(panel, current, fresh) {
    var active = document.activeElement;
    var hadFocus = current.contains(active);
    var id = hadFocus ? active.id : "";
    var typed = hadFocus && typeof active.value === "string" ? active.value : null;
    current.replaceWith(fresh);
    if (!hadFocus) return;
    var again = id ? document.getElementById(id) : null;
    if (again && typed !== null && typeof again.value === "string") again.value = typed;
    // A keyboard user whose button went away lands on the panel's heading.
    focusable(again || panel.querySelector("h2") || panel).focus();
  }

  function lineNumber(item) { return Number(item.getAttribute("data-line")) || 0; }

  function appendLines(current, fresh) {
    var last = 0;
    if (current.getAttribute("data-call-log") !== fresh.getAttribute("data-call-log")) {
      // Another call: the same list (so it stays a live region), new lines.
      current.setAttribute("data-call-log", fresh.getAttribute("data-call-log"));
      while (current.firstChild) current.removeChild(current.firstChild);
    }
    current.querySelectorAll("[data-line]").forEach(function (item) {
      last = Math.max(last, lineNumber(item));
    });
    var added = false;
    fresh.querySelectorAll("[data-line]").forEach(function (item) {
      if (lineNumber(item) > last) { current.appendChild(item); added = true; }
    });
    // The server keeps the last lines only; so does the page.
    while (current.querySelectorAll("[data-line]").length > MAX_LINES) {
      current.removeChild(current.querySelector("[data-line]"));
    }
    if (added) current.scrollTop = current.scrollHeight;
  }

  function update(panel, fresh, afterButton) {
    fresh.querySelectorAll("[data-region]").forEach(function (region) {
      if (!afterButton && region.hasAttribute("data-keep-on-poll")) return;
      var name = region.getAttribute("data-region");
      var current = panel.querySelector("[data-region='" + name + "']");
      if (current && signature(current) !== signature(region)) swap(panel, current, region);
    });
    var logs = panel.querySelectorAll("[data-call-log]");
    var freshLogs = fresh.querySelectorAll("[data-call-log]");
    for (var i = 0; i < logs.length && i < freshLogs.length; i++) appendLines(logs[i], freshLogs[i]);
    var form = panel.querySelector("form[data-refresh-form]");
    var freshForm = fresh.querySelector("form[data-refresh-form]");
    if (form && freshForm) form.replaceWith(freshForm);
    var url = fresh.getAttribute("data-refresh-url");
    if (url) panel.setAttribute("data-refresh-url", url);
    else panel.removeAttribute("data-refresh-url");
  }

  // Apply a page or a panel the server sent; false when it holds no panel (a login
  // page after the session ended, say).
  function apply(html, afterButton) {
    var holder = document.createElement("div");
    holder.innerHTML = html;
    // Read before the update moves the fresh parts into the page.
    var target = holder.querySelector("[data-focus-after-swap]");
    var targetId = target ? target.id : "";
    var found = false;
    panels().forEach(function (panel) {
      var name = panel.getAttribute("data-live-panel");
      var fresh = holder.querySelector("[data-live-panel='" + name + "']");
      if (fresh) { found = true; update(panel, fresh, afterButton); }
    });
    var live = targetId ? document.getElementById(targetId) : null;
    if (found && afterButton && live) focusable(live).focus();
    return found;
  }

  function refresh(panel) {
    var url = panel.getAttribute("data-refresh-url");
    if (!url || panel.rrBusy || pressing) return;
    var options = { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } };
    var form = panel.querySelector("form[data-refresh-form]");
    if (form) {
      options.method = "POST";
      options.body = new FormData(form);
    }
    var started = generation;
    panel.rrBusy = true;
    fetch(url, options)
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) { if (html && started === generation) apply(html, false); })
      .catch(function () { /* the next round tries again */ })
      .then(function () { panel.rrBusy = false; });
  }

  function press(event) {
    var form = event.target;
    if (!form.closest || !form.closest("[data-live-panel]") || form.rrPlain) return;
    event.preventDefault();
    if (pressing) return;  // one button at a time
    var body = new FormData(form);
    var submitter = event.submitter;
    if (submitter && submitter.name) body.append(submitter.name, submitter.value);
    pressing = true;
    generation += 1;
    fetch(form.action, { method: "POST", body: body, credentials: "same-origin" })
      .then(function (response) {
        return response.text().then(function (html) {
          // No panel in the answer (a login page, a refusal): show it as the browser would.
          if (!apply(html, true)) {
            if (response.redirected) window.location.assign(response.url);
            else window.location.reload();
          }
        });
      })
      .catch(function () {
        // Let the browser send it the ordinary way.
        form.rrPlain = true;
        if (form.requestSubmit) form.requestSubmit(submitter || undefined);
        else form.submit();
      })
      .then(function () { pressing = false; });
  }

  function start() {
    if (!panels().length) return;
    // The newest lines of a call are at the bottom of its log.
    document.querySelectorAll("[data-call-log]").forEach(function (log) {
      log.scrollTop = log.scrollHeight;
    });
    document.addEventListener("submit", press);
    window.setInterval(function () { panels().forEach(refresh); }, EVERY_MS);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
