// Live SMS length for alert texts: characters, encoding and segments, as carriers count
// them (core/sms.py does the same on the server). Any character outside GSM 03.38 makes
// the whole message UCS-2: 70 characters a segment instead of 160.
(function () {
  "use strict";
  var BASIC = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\u001bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?" +
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
  var EXTENDED = "^{}\\[~]|€\f";

  function count(text) {
    var gsm = true, units = 0, i, c;
    for (i = 0; i < text.length; i++) {
      c = text.charAt(i);
      if (BASIC.indexOf(c) >= 0) { units += 1; }
      else if (EXTENDED.indexOf(c) >= 0) { units += 2; }
      else { gsm = false; break; }
    }
    if (!gsm) {
      units = text.length; // UTF-16 code units, as UCS-2 counts them
      return { encoding: "UCS-2", units: units, segments: units <= 70 ? 1 : Math.ceil(units / 67) };
    }
    return { encoding: "GSM-7", units: units, segments: units === 0 ? 0 : units <= 160 ? 1 : Math.ceil(units / 153) };
  }

  function update(area, out, form) {
    var info = count(area.value.replace(/\r\n/g, "\n"));
    var text = form.dataset.segmentText
      .replace("{chars}", info.units).replace("{encoding}", info.encoding)
      .replace("{segments}", info.segments);
    out.textContent = text + " ";
    out.classList.toggle("warn", info.segments > 1);
    if (info.segments > 1) {
      var strong = document.createElement("strong");
      strong.textContent = form.dataset.segmentWarning;
      out.appendChild(strong);
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-segments-for]").forEach(function (out) {
      var area = document.getElementById(out.dataset.segmentsFor);
      var form = out.closest("form");
      if (!area || !form) { return; }
      if (out.id) { area.setAttribute("aria-describedby", out.id); }
      area.addEventListener("input", function () { update(area, out, form); });
    });
  });
})();
