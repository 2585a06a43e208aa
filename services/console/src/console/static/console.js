// The console's only script (no inline scripts: the Content-Security-Policy forbids
// them). Everything works without it; it adds live countdowns, local time in the
// notice form and the print button.
(function () {
  "use strict";

  function span(seconds) {
    seconds = Math.floor(Math.abs(seconds));
    var d = Math.floor(seconds / 86400), h = Math.floor(seconds % 86400 / 3600),
        m = Math.floor(seconds % 3600 / 60), s = seconds % 60;
    if (d) return d + " d " + h + " h";
    if (h) return h + " h " + m + " min";
    if (m) return m + " min " + s + " s";
    return s + " s";
  }

  function tick() {
    var now = Date.now();
    document.querySelectorAll("time[data-countdown]").forEach(function (el) {
      var due = Date.parse(el.getAttribute("datetime"));
      if (isNaN(due)) return;
      var left = (due - now) / 1000;
      var overdue = left < 0;
      var text = overdue ? "overdue by " + span(left) : "due in " + span(left);
      if (el.textContent !== text) el.textContent = text;
      el.classList.toggle("overdue", overdue);
      var card = el.closest(".card, .panel");
      if (card) card.classList.toggle("is-overdue", overdue);
    });
  }

  function localTimes() {
    // The notice form: the browser's own time zone, so "03:10" means 03:10 here.
    var offset = document.querySelector("[data-tz-offset]");
    if (!offset) return;
    offset.value = String(new Date().getTimezoneOffset());
    var label = document.querySelector("[data-tz-label]");
    if (label) label.textContent = "(your local time)";
    var input = document.querySelector("[data-local-now]");
    if (input && !input.dataset.touched && input.form && !input.form.dataset.resubmitted) {
      var d = new Date(), pad = function (n) { return String(n).padStart(2, "0"); };
      input.value = d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) +
        "T" + pad(d.getHours()) + ":" + pad(d.getMinutes());
    }
  }

  function utcOnSubmit() {
    // The moment typed, as UTC, for the date typed (daylight saving included).
    document.querySelectorAll("input[data-utc-of]").forEach(function (hidden) {
      var source = document.getElementById(hidden.dataset.utcOf);
      if (!source || !source.form) return;
      source.addEventListener("input", function () { source.dataset.touched = "1"; });
      source.form.addEventListener("submit", function () {
        var moment = new Date(source.value);
        hidden.value = isNaN(moment.getTime()) ? "" : moment.toISOString();
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    utcOnSubmit();
    tick();
    setInterval(tick, 1000);
    localTimes();
    document.querySelectorAll("[data-print]").forEach(function (button) {
      button.addEventListener("click", function () { window.print(); });
    });
  });
})();
