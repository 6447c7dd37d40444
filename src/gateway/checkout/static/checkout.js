// The hosted checkout's live updates. The page works without this file: it only shows the fields of
// the chosen method, counts down a mobile-money prompt and follows the payment's status (WebSocket,
// then Server-Sent Events, then polling status.json), swapping in the server's own HTML on a change.
(function () {
  "use strict";
  var main = document.getElementById("checkout");
  if (!main || !main.dataset.checkout) return;
  document.documentElement.className += " js";
  var base = "/checkout/" + encodeURIComponent(main.dataset.checkout);
  var OPEN = { requires_payment_method: 1, pending: 1, requires_action: 1, processing: 1 };
  var shown = main.dataset.status;
  var seen = "";
  var timer = 0;
  var refreshing = false;

  function bind() {
    var form = document.getElementById("pay-form");
    if (form) {
      var extras = form.querySelectorAll(".extra");
      var sync = function () {
        var picked = form.querySelector("input[name=method]:checked");
        var kind = picked ? picked.getAttribute("data-kind") : "";
        for (var i = 0; i < extras.length; i++) extras[i].hidden = extras[i].getAttribute("data-for") !== kind;
      };
      form.addEventListener("change", sync);
      sync();
    }
    var clock = document.getElementById("countdown");
    clearInterval(timer);
    if (clock) {
      var deadline = Number(clock.getAttribute("data-deadline")) * 1000;
      var tick = function () {
        var left = Math.max(0, Math.round((deadline - Date.now()) / 1000));
        clock.textContent = Math.floor(left / 60) + ":" + ("0" + (left % 60)).slice(-2);
        if (!left) clearInterval(timer);
      };
      tick();
      timer = setInterval(tick, 1000);
    }
  }

  function refresh() {
    if (refreshing) return;
    refreshing = true;
    fetch(base, { headers: { "X-Checkout-Fragment": "1" }, credentials: "same-origin", cache: "no-store" })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) {
        main.innerHTML = html;
        main.dataset.status = shown;
        main.dataset.stage = (main.querySelector("[data-state]") || main).getAttribute("data-state") || "";
        bind();
        var heading = main.querySelector("h2");
        if (heading) { heading.setAttribute("tabindex", "-1"); heading.focus(); }
      })
      .catch(function () {})
      .then(function () { refreshing = false; });
  }

  function update(payment) {
    var key = payment.status + "|" + JSON.stringify(payment.next_action || null);
    if (!seen) { seen = key; if (payment.status === shown) return; }
    if (key === seen && payment.status === shown) return;
    seen = key;
    shown = payment.status;
    refresh();
  }

  function done() { return !OPEN[shown]; }

  function poll() {
    var wait = 2000;
    var step = function () {
      fetch(base + "/status.json", { cache: "no-store" })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (p) { if (p) update(p); })
        .catch(function () {})
        .then(function () { if (!done()) setTimeout(step, wait); });
    };
    setTimeout(step, wait);
  }

  function sse() {
    if (!window.EventSource) return poll();
    var source = new EventSource(base + "/events");
    var opened = false;
    source.onmessage = function (e) {
      opened = true;
      update(JSON.parse(e.data));
      if (done()) source.close();
    };
    source.onerror = function () {
      if (done()) return source.close();
      if (!opened) { source.close(); poll(); }
    };
  }

  function socket() {
    if (!window.WebSocket) return sse();
    var ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + base + "/ws");
    var opened = false;
    ws.onmessage = function (e) { opened = true; update(JSON.parse(e.data)); };
    ws.onclose = function () { if (!opened && !done()) sse(); else if (!done()) setTimeout(socket, 1000); };
  }

  bind();
  if (!done()) (main.dataset.live === "ws" ? socket : sse)();
})();
