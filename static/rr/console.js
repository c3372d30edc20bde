/* The live console: server-sent events update the incident table, the unplaced queue
 * and the map without a reload. EventSource reconnects by itself and sends
 * Last-Event-ID, so the server replays whatever was missed. */
(function () {
  "use strict";

  function fromHTML(html) {
    var t = document.createElement("template");
    t.innerHTML = html.trim();
    return t.content.firstElementChild;
  }

  function init() {
    var root = document.querySelector("[data-console]");
    if (!root || !window.EventSource) return;
    var incidentRows = root.querySelector("[data-incident-rows]");
    var unplacedRows = root.querySelector("[data-unplaced-rows]");
    var incidentsEmpty = root.querySelector("[data-incidents-empty]");
    var unplacedEmpty = root.querySelector("[data-unplaced-empty]");
    var status = root.querySelector("[data-live-status]");
    var announcer = root.querySelector("[data-announcer]");
    var liveRows = root.dataset.liveRows === "1";
    var liveUnplaced = root.dataset.liveUnplaced === "1";
    var mapEl = root.querySelector("[data-map]");

    function map() { return mapEl && window.RRMapFor ? window.RRMapFor(mapEl) : null; }

    // Announcements are gathered for a second: one change is read out as it is, a burst
    // (a surge, or the replay after a reconnect) as a single count.
    var pending = [];
    var flushTimer = null;
    function announce(text) {
      if (!announcer || !text) return;
      pending.push(text);
      if (flushTimer) return;
      flushTimer = window.setTimeout(function () {
        announcer.textContent = pending.length === 1
          ? pending[0]
          : root.dataset.labelMany.replace("{count}", String(pending.length));
        pending = [];
        flushTimer = null;
      }, 1000);
    }

    function setStatus(live) {
      status.textContent = live ? status.dataset.live : status.dataset.down;
      status.classList.toggle("is-live", live);
      status.classList.toggle("is-down", !live);
    }

    // EventSource gives up for good when the server refuses it (a session that ended).
    function showStopped() {
      status.textContent = root.dataset.labelStopped + " ";
      var reload = document.createElement("a");
      reload.href = window.location.href;
      reload.textContent = root.dataset.labelReload;
      status.appendChild(reload);
      status.classList.remove("is-live");
      status.classList.add("is-down");
    }
    status.dataset.live = root.dataset.labelLive;
    status.dataset.down = root.dataset.labelDown;

    // Replace a row in place; on the first page, move it (or a new one) to the top.
    function upsert(container, id, html, toTop) {
      var existing = document.getElementById(id);
      if (!existing && !toTop) return false;
      var row = fromHTML(html);
      if (!row) return false;
      var hadFocus = existing && existing.contains(document.activeElement);
      if (toTop) {
        if (existing) existing.remove();
        container.insertBefore(row, container.firstElementChild);
      } else {
        existing.replaceWith(row);
      }
      row.classList.add("is-new");
      if (hadFocus) {
        var link = row.querySelector("a");
        if (link) link.focus();
      }
      return true;
    }

    function removeRow(id) {
      var el = document.getElementById(id);
      if (el) el.remove();
    }

    function refreshEmpty() {
      if (incidentsEmpty) incidentsEmpty.hidden = incidentRows.children.length > 0;
      if (unplacedEmpty) unplacedEmpty.hidden = unplacedRows.children.length > 0;
    }

    function onIncident(event) {
      var data = JSON.parse(event.data);
      var rowId = "incident-" + data.id;
      var isNew = !document.getElementById(rowId);
      if (!data.open) {
        removeRow(rowId);
        if (map()) map().removePoint(data.id);
      } else {
        if (upsert(incidentRows, rowId, data.html, liveRows) && map() && data.point) map().setPoint(data.point);
        var row = document.getElementById(rowId);
        var link = row && row.querySelector(".incident-link");
        if (link) announce((isNew ? root.dataset.labelNew : root.dataset.labelUpdated) + " " + link.textContent);
      }
      refreshEmpty();
    }

    function onUnplaced(event) {
      var data = JSON.parse(event.data);
      var rowId = "report-" + data.id;
      var isNew = !document.getElementById(rowId);
      if (!data.queued) removeRow(rowId);
      else {
        upsert(unplacedRows, rowId, data.html, liveUnplaced);
        if (isNew) announce(root.dataset.labelUnplaced);
      }
      refreshEmpty();
    }

    var source = new EventSource(root.dataset.eventsUrl);
    source.addEventListener("open", function () { setStatus(true); });
    source.addEventListener("error", function () {
      if (source.readyState === EventSource.CLOSED) showStopped();
      else setStatus(false);
    });
    source.addEventListener("incident", onIncident);
    source.addEventListener("report", onUnplaced);
    source.addEventListener("reload", function () { window.location.reload(); });
    window.addEventListener("pagehide", function () { source.close(); });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
