/* Maps for the console, detail pages and the report form (Leaflet, vendored).
 *
 * <div class="map" data-map='{"tiles": "", "area": "/url.geojson"}'
 *      data-map-points="id-of-json-script"     optional: markers to show
 *      data-pick-lat="id" data-pick-lng="id"   optional: a click sets these inputs
 *      data-map-focus="points">                optional: zoom to the markers, not the area
 *
 * With no tile server configured, the map shows the network's neighbourhoods only:
 * nothing is loaded from a third party.
 */
(function () {
  "use strict";

  var LEVEL_COLOURS = { red: "#b3141d", yellow: "#d99a00", green: "#1d6b33", blue: "#14539a", report: "#0b5cad" };

  // Leaflet inserts string tooltips as HTML; labels come from reports and must be text.
  function textNode(text) {
    var span = document.createElement("span");
    span.textContent = text || "";
    return span;
  }

  function readJSON(id) {
    var el = id && document.getElementById(id);
    if (!el) return [];
    try { return JSON.parse(el.textContent); } catch (e) { return []; }
  }

  function RRMap(el) {
    var config = {};
    try { config = JSON.parse(el.dataset.map || "{}"); } catch (e) { config = {}; }
    this.el = el;
    this.markers = {};
    this.map = L.map(el, { zoomControl: true, attributionControl: !!config.tiles, keyboard: true, zoomSnap: 0.25 });
    this.map.setView([0, 0], 2);
    // Neighbourhoods and their names sit below the incident markers.
    this.map.createPane("area").style.zIndex = 250;
    this.map.createPane("areaLabels").style.zIndex = 350;
    if (config.tiles) {
      L.tileLayer(config.tiles, { attribution: config.attribution || "", maxZoom: 19 }).addTo(this.map);
    }
    this.hasBounds = false;
    var self = this;
    if (config.area) {
      fetch(config.area, { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (data) { if (data) self.showArea(data); })
        .catch(function () { /* the map still works without the outline */ });
    }
    readJSON(el.dataset.mapPoints).forEach(function (p) { self.setPoint(p); });
    if (el.dataset.pickLat && el.dataset.pickLng) this.enablePicking(el.dataset.pickLat, el.dataset.pickLng);
    this.fit();
  }

  RRMap.prototype.showArea = function (geojson) {
    var layer = L.geoJSON(geojson, {
      pane: "area",
      style: function () { return { color: "#4a5560", weight: 1.5, fillColor: "#ffffff", fillOpacity: 0.6 }; },
      onEachFeature: function (feature, lyr) {
        if (feature.properties && feature.properties.name) {
          lyr.bindTooltip(textNode(feature.properties.name), {
            permanent: true, direction: "center", className: "area-label", pane: "areaLabels", opacity: 1
          });
        }
      },
      interactive: false
    }).addTo(this.map);
    layer.bringToBack();
    this.areaBounds = layer.getBounds();
    this.fit();
  };

  RRMap.prototype.fit = function () {
    var ids = Object.keys(this.markers);
    var focusPoints = this.el.dataset.mapFocus === "points" && ids.length;
    if (!focusPoints && this.areaBounds && this.areaBounds.isValid()) {
      this.map.fitBounds(this.areaBounds, { padding: [8, 8] });
    } else if (ids.length) {
      var group = L.featureGroup(ids.map(function (id) { return this.markers[id]; }, this));
      this.map.fitBounds(group.getBounds(), { padding: [30, 30], maxZoom: 14 });
    }
  };

  RRMap.prototype.setPoint = function (p) {
    if (p.lat === null || p.lat === undefined) return;
    var existing = this.markers[p.id];
    var style = { radius: 9, color: "#1b1f24", weight: 2, fillColor: LEVEL_COLOURS[p.level] || "#555", fillOpacity: 0.95 };
    if (existing) {
      existing.setLatLng([p.lat, p.lng]);
      existing.setStyle(style);
      existing.setTooltipContent(textNode(p.label));
      return;
    }
    var marker = L.circleMarker([p.lat, p.lng], style).addTo(this.map);
    if (p.label) marker.bindTooltip(textNode(p.label));
    if (p.url) marker.on("click", function () { window.location.href = p.url; });
    this.markers[p.id] = marker;
  };

  RRMap.prototype.removePoint = function (id) {
    var marker = this.markers[id];
    if (marker) { this.map.removeLayer(marker); delete this.markers[id]; }
  };

  RRMap.prototype.enablePicking = function (latId, lngId) {
    var latInput = document.getElementById(latId);
    var lngInput = document.getElementById(lngId);
    if (!latInput || !lngInput) return;
    var self = this;
    this.pin = null;
    this.pick = function (lat, lng) {
      latInput.value = lat.toFixed(6);
      lngInput.value = lng.toFixed(6);
      if (self.pin) { self.pin.setLatLng([lat, lng]); }
      else { self.pin = L.marker([lat, lng], { keyboard: false }).addTo(self.map); }
      self.el.dispatchEvent(new CustomEvent("rr:pinned", { bubbles: true }));
    };
    this.clearPin = function () {
      latInput.value = ""; lngInput.value = "";
      if (self.pin) { self.map.removeLayer(self.pin); self.pin = null; }
      self.el.dispatchEvent(new CustomEvent("rr:unpinned", { bubbles: true }));
    };
    this.map.on("click", function (e) { self.pick(e.latlng.lat, e.latlng.lng); });
    // Keyboard: the arrow keys move the map (Leaflet), Enter drops the pin at the centre,
    // where a crosshair is drawn while the map has focus.
    this.el.classList.add("is-picking");
    this.el.addEventListener("keydown", function (e) {
      if ((e.key === "Enter" || e.key === " ") && e.target === self.el) {
        e.preventDefault();
        var centre = self.map.getCenter();
        self.pick(centre.lat, centre.lng);
      }
    });
    var lat = parseFloat(latInput.value), lng = parseFloat(lngInput.value);
    if (isFinite(lat) && isFinite(lng)) this.pick(lat, lng);
  };

  window.RRMaps = [];
  window.RRMapFor = function (el) {
    for (var i = 0; i < window.RRMaps.length; i++) if (window.RRMaps[i].el === el) return window.RRMaps[i];
    return null;
  };

  function init() {
    if (typeof L === "undefined") return;
    document.querySelectorAll("[data-map]").forEach(function (el) {
      if (!window.RRMapFor(el)) window.RRMaps.push(new RRMap(el));
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
