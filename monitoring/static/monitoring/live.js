/* The live-update client shared by the dashboard and the order desk (no build step).
 *
 * LiveStream(wsPath, snapshotUrl, handlers) keeps a state that is always whole:
 * - it loads the snapshot (monitoring/selectors.py) and remembers, per account, the number of the
 *   last event it includes (seq);
 * - it opens the websocket (/ws/live/) and applies each event whose number is the next one;
 *   an event already covered is dropped; one that comes early (another process sent it first)
 *   waits up to REORDER_MS for the missing ones, then the state is re-synced from the snapshot;
 * - on a lost connection it reconnects (back-off up to 10 s) and re-syncs; while the websocket
 *   cannot be opened at all, it polls the snapshot every POLL_MS.
 * handlers: onSnapshot(snapshot), onEvent(event), onStatus(state) with state one of
 * "live", "connecting", "resync", "polling"; refreshMs: re-sync this often (default 30 s; 0 never).
 */
(function () {
  "use strict";
  var REORDER_MS = 1000, POLL_MS = 5000, REFRESH_MS = 30000;

  function LiveStream(wsPath, snapshotUrl, handlers) {
    this.wsPath = wsPath;
    this.snapshotUrl = snapshotUrl;
    this.handlers = handlers;
    this.seq = {};          // account ("_system" for the system) -> last number applied
    this.pending = {};      // account -> {seq: event} that came early
    this.gapTimer = null;
    this.failures = 0;
    this.socket = null;
    this.buffer = null;     // events received while a snapshot is loading
    this.pollTimer = null;
    this.refreshMs = handlers.refreshMs === undefined ? REFRESH_MS : handlers.refreshMs;  // 0: never
  }

  LiveStream.prototype.start = function () {
    var self = this;
    this.resync().then(function () { self.connect(); });
    if (this.refreshMs) {  // prices move without events: take the whole state again now and then
      setInterval(function () { if (self.socket && self.socket.readyState === 1) { self.resync(); } }, this.refreshMs);
    }
  };

  LiveStream.prototype.status = function (state) {
    if (this.handlers.onStatus) { this.handlers.onStatus(state); }
  };

  LiveStream.prototype.resync = function () {
    var self = this;
    this.buffer = this.buffer || [];
    return fetch(this.snapshotUrl, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (response) { if (!response.ok) { throw new Error("snapshot " + response.status); } return response.json(); })
      .then(function (snapshot) {
        self.seq = Object.assign({}, snapshot.seq);
        self.pending = {};
        self.handlers.onSnapshot(snapshot);
        var held = self.buffer || [];
        self.buffer = null;
        held.forEach(function (event) { self.receive(event); });
      })
      .catch(function () { self.buffer = null; });
  };

  LiveStream.prototype.connect = function () {
    var self = this;
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    var socket;
    this.status("connecting");
    try {
      // The websocket server may listen on a port of its own (handlers.wsPort, LIVE_WEBSOCKET_PORT).
      var host = this.handlers.wsPort ? window.location.hostname + ":" + this.handlers.wsPort : window.location.host;
      socket = new WebSocket(scheme + host + this.wsPath);
    } catch (error) {
      this.fallback();
      return;
    }
    this.socket = socket;
    socket.onopen = function () {
      self.failures = 0;
      if (self.pollTimer) { clearInterval(self.pollTimer); self.pollTimer = null; }
    };
    socket.onmessage = function (message) {
      var data;
      try { data = JSON.parse(message.data); } catch (error) { return; }
      if (data.type === "hello") {
        self.status("live");
        // Anything numbered between the snapshot and this connection was missed: re-sync.
        var behind = Object.keys(data.seq).some(function (key) { return (self.seq[key] || 0) < data.seq[key]; });
        if (behind) { self.status("resync"); self.resync().then(function () { self.status("live"); }); }
      } else if (data.type === "event") {
        self.receive(data);
      }
    };
    socket.onclose = function () {
      self.socket = null;
      self.failures += 1;
      if (self.failures >= 3) { self.fallback(); }
      else { self.status("connecting"); }
      setTimeout(function () { self.connect(); }, Math.min(10000, 500 * Math.pow(2, self.failures)));
    };
  };

  LiveStream.prototype.fallback = function () {
    var self = this;
    this.status("polling");
    if (!this.pollTimer) { this.pollTimer = setInterval(function () { self.resync(); }, POLL_MS); }
  };

  LiveStream.prototype.receive = function (event) {
    if (this.buffer) { this.buffer.push(event); return; }
    var key = event.account || "_system";
    var last = this.seq[key] || 0;
    if (event.seq <= last) { return; }  // the snapshot has it already
    if (event.seq > last + 1) {  // came early: wait for the missing ones
      (this.pending[key] = this.pending[key] || {})[event.seq] = event;
      this.armGapTimer();
      return;
    }
    this.apply(key, event);
    var waiting = this.pending[key] || {};
    while (waiting[this.seq[key] + 1]) {
      var next = waiting[this.seq[key] + 1];
      delete waiting[this.seq[key] + 1];
      this.apply(key, next);
    }
    if (!Object.keys(waiting).length && this.gapTimer && !this.anyPending()) { clearTimeout(this.gapTimer); this.gapTimer = null; }
  };

  LiveStream.prototype.apply = function (key, event) {
    this.seq[key] = event.seq;
    this.handlers.onEvent(event);
  };

  LiveStream.prototype.anyPending = function () {
    var pending = this.pending;
    return Object.keys(pending).some(function (key) { return Object.keys(pending[key]).length > 0; });
  };

  LiveStream.prototype.armGapTimer = function () {
    var self = this;
    if (this.gapTimer) { return; }
    this.gapTimer = setTimeout(function () {
      self.gapTimer = null;
      if (self.anyPending()) {  // still missing: those events are lost to us, take the whole state again
        self.status("resync");
        self.resync().then(function () { self.status("live"); });
      }
    }, REORDER_MS);
  };

  function money(value) {
    if (value === null || value === undefined || value === "") { return "-"; }
    var number = Number(value);
    if (!isFinite(number)) { return String(value); }
    return number.toLocaleString(undefined, {minimumFractionDigits: 2, maximumFractionDigits: 2});
  }

  function element(tag, attributes, text) {
    var node = document.createElement(tag);
    Object.keys(attributes || {}).forEach(function (name) { node.setAttribute(name, attributes[name]); });
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    return node;
  }

  window.TboLive = {LiveStream: LiveStream, money: money, element: element};
})();
