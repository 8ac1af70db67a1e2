// Ticks down each lease countdown (<span class="countdown" data-until=ISO>)
// once a second. The server already rendered the expiry time and the time
// left; without this script the page still says when the claim lapses.
(function () {
  "use strict";
  function pad(n) { return n < 10 ? "0" + n : String(n); }
  function tick() {
    var els = document.querySelectorAll(".countdown[data-until]");
    for (var i = 0; i < els.length; i++) {
      var left = Math.round((Date.parse(els[i].getAttribute("data-until")) - Date.now()) / 1000);
      if (isNaN(left)) { continue; }
      if (left <= 0) {
        els[i].textContent = "0:00 (lapsed: claim again from the queue)";
        els[i].classList.add("lapsed");
      } else {
        els[i].textContent = Math.floor(left / 60) + ":" + pad(left % 60);
      }
    }
  }
  document.addEventListener("DOMContentLoaded", function () {
    if (document.querySelector(".countdown[data-until]")) {
      tick();
      window.setInterval(tick, 1000);
    }
  });
})();
