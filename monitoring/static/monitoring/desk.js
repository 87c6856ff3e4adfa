/* The order desk (admin order list) kept current without a reload: a row's status, filled
 * quantity and reason follow the live events; a new order that belongs in the list shown (the
 * held-orders queue, or the unfiltered list) appears at the top, copied from an existing row. */
(function () {
  "use strict";
  var root = document.getElementById("tbo-desk-live");
  var table = document.getElementById("result_list");
  if (!root || !window.TboLive) { return; }
  var live = window.TboLive, element = live.element;
  var labels = JSON.parse(document.getElementById("live-labels").textContent);
  var styles = JSON.parse(document.getElementById("live-status-styles").textContent);
  var filter = new URLSearchParams(window.location.search);
  var wanted = filter.get("status__exact");
  var plain = Array.from(filter.keys()).filter(function (k) { return ["o", "p", "status__exact"].indexOf(k) < 0; }).length === 0;

  function rowOf(id) {
    if (!table) { return null; }
    var box = table.querySelector("input.action-select[value='" + id + "']");
    return box ? box.closest("tr") : null;
  }

  function badge(status) {
    return element("span", {"class": "tbo-badge tbo-badge-" + (styles[status] || "dead"), "data-status": status},
                   labels.status[status] || status);
  }

  function update(row, data) {
    var cell = row.querySelector("td.field-status_badge");
    if (cell) { cell.textContent = ""; cell.appendChild(badge(data.status)); }
    var quantity = row.querySelector("td.field-quantity_display");
    if (quantity) { quantity.textContent = ""; quantity.appendChild(element("span", {"class": "tbo-num"}, data.filled_quantity + " / " + data.quantity)); }
    var reason = row.querySelector("td.field-reason_short");
    if (reason && data.reason) { reason.textContent = data.reason.length > 24 ? data.reason.slice(0, 24) + "…" : data.reason; reason.title = data.reason; }
    row.dataset.liveStatus = data.status;
    row.classList.remove("tbo-live-new"); void row.offsetWidth; row.classList.add("tbo-live-new");
  }

  function insert(event) {
    var data = event.data;
    var model = table && table.querySelector("tbody tr");
    if (!model) {  // an empty list has no row to copy: say so, a reload shows it
      root.textContent = labels.text.new_held + " (#" + data.id + ")";
      root.classList.add("shown");
      return;
    }
    var row = model.cloneNode(true);
    var box = row.querySelector("input.action-select");
    if (box) { box.value = String(data.id); box.checked = false; }
    row.classList.remove("selected");
    var link = row.querySelector("th.field-id a, td.field-id a");
    var href = link ? link.getAttribute("href").replace(/\/\d+\/change\//, "/" + data.id + "/change/") : null;
    row.querySelectorAll("a").forEach(function (a) { if (href && /\/change\//.test(a.getAttribute("href"))) { a.setAttribute("href", href); } });
    function set(name, text) { var cell = row.querySelector(".field-" + name); if (cell) { var a = cell.querySelector("a"); (a || cell).textContent = text; } }
    set("id", data.id);
    set("created_local", new Date(event.at).toLocaleTimeString());
    set("account", event.account);
    set("symbol_display", data.symbol || "");
    set("side_display", labels.side[data.side] || data.side);
    set("price_display", data.price || "");
    set("strategy", data.strategy || "");
    set("reason_short", "");
    update(row, data);
    model.parentNode.insertBefore(row, model);
  }

  function onEvent(event) {
    if (event.kind !== "order") { return; }
    var row = rowOf(event.data.id);
    if (row) { update(row, event.data); return; }
    if ((wanted && event.data.status === wanted) || (!wanted && plain)) { insert(event); }
  }

  var synced = false;
  function onSnapshot() {  // after the first: events were missed, the rows may be stale
    if (synced) { root.textContent = labels.text.missed; root.classList.add("shown"); }
    synced = true;
  }

  new live.LiveStream(root.dataset.ws, root.dataset.snapshot, {wsPort: root.dataset.wsPort,
    onSnapshot: onSnapshot, onEvent: onEvent, refreshMs: 0,
    onStatus: function (state) { document.body.dataset.liveState = state; }
  }).start();
})();
