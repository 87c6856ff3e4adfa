/* The live dashboard (templates/monitoring/dashboard.html): state from the snapshot, kept current
 * by the live events; every figure is recomputed from that state. */
(function () {
  "use strict";
  var root = document.getElementById("live-dashboard");
  if (!root) { return; }
  var live = window.TboLive, money = live.money, element = live.element;
  var labels = JSON.parse(document.getElementById("live-labels").textContent);
  var state = {accounts: {}, health: null, alerts: [], risk: []};
  var curve = [[], []];  // seconds, P&L
  var chart = null;
  var ORDERS_SHOWN = 200, EVENTS_SHOWN = 30;

  function label(group, value) { return (labels[group] && labels[group][value]) || value; }

  function totals() {
    var sum = {cash: 0, available: 0, market_value: 0, pnl: 0};
    Object.keys(state.accounts).forEach(function (name) {
      var view = state.accounts[name], marketValue = 0, unrealized = 0, realized = 0;
      view.positions.forEach(function (p) {
        var last = Number(p.last_price || 0);
        p.market_value = (last * p.quantity).toFixed(2);
        p.unrealized_pnl = (Number(p.market_value) - Number(p.cost_amount || 0)).toFixed(2);
        marketValue += Number(p.market_value);
        unrealized += Number(p.unrealized_pnl);
      });
      Object.keys(view.realized_by_symbol || {}).forEach(function (symbol) { realized += Number(view.realized_by_symbol[symbol]); });
      sum.cash += Number(view.balance.cash);
      sum.available += Number(view.balance.available);
      sum.market_value += marketValue;
      sum.pnl += unrealized + realized;
    });
    return sum;
  }

  function renderCards() {
    var sum = totals();
    document.getElementById("total-cash").textContent = money(sum.cash);
    document.getElementById("total-available").textContent = money(sum.available);
    document.getElementById("total-market-value").textContent = money(sum.market_value);
    document.getElementById("total-assets").textContent = money(sum.cash + sum.market_value);
    var pnl = document.getElementById("total-pnl");
    pnl.textContent = money(sum.pnl);
    pnl.className = sum.pnl > 0 ? "up" : (sum.pnl < 0 ? "down" : "");
    var now = Date.now() / 1000;
    if (!curve[0].length || now - curve[0][curve[0].length - 1] >= 1) { curve[0].push(now); curve[1].push(sum.pnl); }
    else { curve[1][curve[1].length - 1] = sum.pnl; }
    drawChart();
  }

  function drawChart() {
    var box = document.getElementById("pnl-chart");
    if (!window.uPlot || !box) { return; }
    if (!chart) {
      chart = new window.uPlot({width: box.clientWidth || 600, height: 220,
        series: [{}, {label: labels.text.pnl, stroke: "#c0392b", width: 2, fill: "rgba(192,57,43,0.08)"}],
        axes: [{}, {size: 70}],
        tzDate: function (ts) { return window.uPlot.tzDate(new Date(ts * 1e3), "Asia/Shanghai"); },  // exchange time
        // At least the last ten minutes: with one or two points uPlot would stretch the axis over years.
        scales: {x: {time: true, range: function (u, min, max) {
          var end = Math.max(max || 0, Date.now() / 1000);
          return [Math.min(min || end, end - 600), end];
        }}}}, curve, box);
    } else {
      chart.setData(curve);
    }
  }

  function renderPositions() {
    totals();  // market values and P&L from the positions and prices held now
    var body = document.querySelector("#positions tbody");
    body.textContent = "";
    Object.keys(state.accounts).sort().forEach(function (name) {
      state.accounts[name].positions.filter(function (p) { return p.quantity > 0; }).forEach(function (p) {
        var row = element("tr", {"data-account": name, "data-symbol": p.symbol});
        [name, p.symbol + (p.name ? " " + p.name : ""), p.quantity, p.last_price || "-", money(p.market_value), money(p.unrealized_pnl)]
          .forEach(function (value, index) {
            var cell = element("td", {}, value);
            if (index === 5) { cell.className = Number(p.unrealized_pnl) >= 0 ? "up" : "down"; }
            row.appendChild(cell);
          });
        body.appendChild(row);
      });
    });
  }

  function renderOrders() {
    var all = [];
    Object.keys(state.accounts).forEach(function (name) {
      state.accounts[name].orders.forEach(function (o) { all.push([name, o]); });
    });
    all.sort(function (a, b) { return b[1].id - a[1].id; });
    var body = document.querySelector("#orders tbody");
    body.textContent = "";
    all.slice(0, ORDERS_SHOWN).forEach(function (pair) {
      var o = pair[1];
      var row = element("tr", {"data-order-id": o.id, "data-status": o.status});
      [o.id, pair[0], o.symbol || "-", label("side", o.side), o.price || "-", o.quantity, o.filled_quantity].forEach(function (value) {
        row.appendChild(element("td", {}, value));
      });
      var status = element("td", {}, "");
      status.appendChild(element("span", {"class": "live-status status-" + o.status, title: o.reason || ""}, label("status", o.status)));
      row.appendChild(status);
      body.appendChild(row);
    });
  }

  function renderList(id, items, text) {
    var list = document.getElementById(id);
    list.textContent = "";
    if (!items.length) { list.appendChild(element("li", {"class": "live-empty"}, labels.text.none)); return; }
    items.slice(0, EVENTS_SHOWN).forEach(function (item) { list.appendChild(text(item)); });
  }

  function renderEvents() {
    renderList("risk-events", state.risk, function (e) {
      return element("li", {"class": "level-" + String(e.level || "").toLowerCase()},
                     (e.account ? e.account + " · " : "") + e.rule + (e.action ? " [" + e.action + "]" : "") + ": " + e.message);
    });
    renderList("alerts", state.alerts, function (a) {
      return element("li", {"class": "level-" + String(a.level || "").toLowerCase()},
                     (a.account ? a.account + " · " : "") + (a.title || a.message || a.rule || JSON.stringify(a)));
    });
  }

  function renderHealth() {
    var body = document.querySelector("#health tbody");
    body.textContent = "";
    var health = state.health;
    if (!health) { return; }
    function row(name, value, ok) {
      var tr = element("tr", {}), cell = element("td", {"class": ok ? "ok" : "bad"}, value);
      tr.appendChild(element("th", {}, name));
      tr.appendChild(cell);
      body.appendChild(tr);
    }
    health.brokers.forEach(function (link) {
      row(labels.text.broker + " " + link.account, label("link", link.state) + (link.error ? " · " + link.error : ""), link.state !== "DOWN");
    });
    if (!health.brokers.length) { row(labels.text.broker, labels.text.none, true); }
    var workers = health.workers || {};
    row(labels.text.workers, label("workers", workers.state) + (workers.names && workers.names.length ? " (" + workers.names.length + ")" : ""),
        workers.state === "up" || workers.state === "inline");
    var beat = health.scheduler && health.scheduler.last_heartbeat_at;
    var age = beat ? Math.round((Date.now() - Date.parse(beat)) / 1000) : null;
    row(labels.text.scheduler, age === null ? "-" : labels.text.ago.replace("%s", age),
        age !== null && age <= 3 * (health.scheduler.interval_seconds || 10));
    row(labels.text.queue, health.queue_depth === null ? "-" : health.queue_depth, !(health.queue_depth > 100));
    row(labels.text.outbox, health.outbox_owed, health.outbox_owed < 100);
    if (health.live_backlog !== null && health.live_backlog !== undefined) {
      row(labels.text.live_backlog, health.live_backlog, health.live_backlog < 1000);
    }
  }

  function renderAll() { renderCards(); renderPositions(); renderOrders(); renderEvents(); renderHealth(); }

  function onSnapshot(snapshot) {
    state.accounts = {};
    snapshot.accounts.forEach(function (view) {
      view.positionsBySymbol = {};
      view.positions.forEach(function (p) { view.positionsBySymbol[p.symbol] = p; });
      state.accounts[view.account] = view;
    });
    if (snapshot.health) { state.health = snapshot.health; }
    state.risk = [];
    snapshot.accounts.forEach(function (view) {
      view.risk_events.forEach(function (e) { state.risk.push(Object.assign({account: view.account}, e)); });
    });
    state.risk.sort(function (a, b) { return (b.id || 0) - (a.id || 0); });
    renderAll();
  }

  function onEvent(event) {
    var view = state.accounts[event.account], data = event.data;
    switch (event.kind) {
      case "order":
        if (!view) { return; }
        var found = view.orders.filter(function (o) { return o.id === data.id; })[0];
        if (found) { Object.assign(found, data, {symbol: data.symbol || found.symbol}); }
        else { view.orders.unshift(data); }
        renderOrders();
        break;
      case "balance":
        if (!view) { return; }
        view.balance.cash = data.cash; view.balance.frozen = data.frozen; view.balance.available = data.available;
        renderCards();
        break;
      case "position":
        if (!view) { return; }
        var position = view.positionsBySymbol[data.symbol];
        if (!position) {
          position = {symbol: data.symbol, name: "", last_price: null};
          view.positionsBySymbol[data.symbol] = position;
          view.positions.push(position);
        }
        Object.assign(position, {quantity: data.quantity, cost_amount: data.cost_amount});
        (view.realized_by_symbol = view.realized_by_symbol || {})[data.symbol] = data.realized_pnl;
        if (!position.last_price && data.quantity) { position.last_price = (Number(data.cost_amount) / data.quantity).toFixed(2); }
        renderPositions(); renderCards();
        break;
      case "risk":
        state.risk.unshift(Object.assign({account: event.account}, data));
        renderEvents();
        break;
      case "alert":
        state.alerts.unshift(Object.assign({account: event.account}, data));
        renderEvents();
        break;
      case "broker_link":
      case "health":
        if (state.health && event.kind === "broker_link") {
          var link = state.health.brokers.filter(function (l) { return l.account === event.account; })[0];
          if (link) { link.state = data.state; link.error = data.error; }
          else { state.health.brokers.push({account: event.account, state: data.state, error: data.error}); }
        }
        renderHealth();
        break;
      default:
        break;
    }
  }

  function onStatus(status) {
    var node = document.getElementById("live-status");
    node.dataset.state = status;
    node.textContent = label("connection", status);
  }

  new live.LiveStream(root.dataset.ws, root.dataset.snapshot, {wsPort: root.dataset.wsPort,onSnapshot: onSnapshot, onEvent: onEvent, onStatus: onStatus}).start();
})();
