// The connection report page: plain browser JavaScript (no build step), uPlot for the charts.
// Signs in with an operator API token (kept in sessionStorage of this tab) and calls
// /api/v1/reports/... with it. Every request shows progress; errors show the API's message;
// empty results say why they are empty.
/* global uPlot */
(function () {
  'use strict';

  var $ = function (id) { return document.getElementById(id); };
  var state = { token: sessionStorage.getItem('acs-token') || '', device: null, charts: {}, busy: 0 };

  // ---- formatting --------------------------------------------------------------------------

  function fmtDuration(ms) {
    if (ms === null || ms === undefined) return '—';
    var s = ms / 1000;
    if (s < 1) return Math.round(ms) + ' ms';
    if (s < 60) return (s < 10 ? s.toFixed(1) : Math.round(s)) + ' s';
    var m = s / 60;
    if (m < 60) return Math.round(m) + ' min';
    var h = m / 60;
    if (h < 48) return h.toFixed(1) + ' h';
    return (h / 24).toFixed(1) + ' d';
  }
  function fmtNum(n) { return n === null || n === undefined ? '—' : Number(n).toLocaleString('en-US'); }
  function fmtPct(x) { return x === null || x === undefined ? '—' : (x * 100).toFixed(1) + ' %'; }
  function fmtTime(iso, tz) {
    if (!iso) return '—';
    try {
      return new Intl.DateTimeFormat('en-GB', { timeZone: tz, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' }).format(new Date(iso));
    } catch (e) { return iso; }
  }
  function el(tag, attrs, children) {
    var e = document.createElement(tag);
    if (attrs) for (var k in attrs) {
      if (k === 'text') e.textContent = attrs[k];
      else if (k === 'className') e.className = attrs[k];
      else e.setAttribute(k, attrs[k]);
    }
    (children || []).forEach(function (c) { if (c) e.appendChild(c); });
    return e;
  }

  // ---- status, errors ----------------------------------------------------------------------

  function progress(text) {
    state.busy += 1;
    var s = $('status');
    s.textContent = text;
    s.classList.add('busy');
    return function done(final) {
      state.busy -= 1;
      if (state.busy <= 0) {
        state.busy = 0;
        s.classList.remove('busy');
        s.textContent = final || '';
      }
    };
  }
  function showError(msg) {
    var e = $('error');
    if (!msg) { e.hidden = true; e.textContent = ''; return; }
    e.hidden = false;
    e.textContent = msg;
  }

  // ---- API ---------------------------------------------------------------------------------

  function api(path) {
    return fetch(path, { headers: { Authorization: 'Bearer ' + state.token, Accept: 'application/json' } }).then(function (res) {
      return res.text().then(function (text) {
        var body = null;
        try { body = text ? JSON.parse(text) : null; } catch (e) { body = null; }
        if (res.status === 401) { signOut('Your token was refused (' + ((body && body.error && body.error.message) || 'unauthorised') + '). Sign in again.'); throw new Error('not signed in'); }
        if (!res.ok) throw new Error((body && body.error && body.error.message) || ('HTTP ' + res.status));
        return body;
      });
    }, function (err) { throw new Error('the ACS did not answer: ' + err.message); });
  }

  /** Downloads a CSV with the token (a plain link cannot carry it), showing bytes as they come. */
  function download(path, filename) {
    var done = progress('Preparing ' + filename + '…');
    fetch(path, { headers: { Authorization: 'Bearer ' + state.token } }).then(function (res) {
      if (!res.ok) return res.json().then(function (b) { throw new Error((b && b.error && b.error.message) || ('HTTP ' + res.status)); }, function () { throw new Error('HTTP ' + res.status); });
      var reader = res.body.getReader();
      var chunks = [];
      var bytes = 0;
      function pump() {
        return reader.read().then(function (r) {
          if (r.done) return;
          chunks.push(r.value);
          bytes += r.value.length;
          $('status').textContent = 'Downloading ' + filename + ': ' + fmtNum(bytes) + ' bytes…';
          return pump();
        });
      }
      return pump().then(function () {
        var url = URL.createObjectURL(new Blob(chunks, { type: 'text/csv' }));
        var a = el('a', { href: url, download: filename });
        document.body.appendChild(a);
        a.click();
        a.remove();
        setTimeout(function () { URL.revokeObjectURL(url); }, 10000);
        done('Downloaded ' + filename + ' (' + fmtNum(bytes) + ' bytes).');
      });
    }).catch(function (err) { done(''); showError('Download failed: ' + err.message); });
  }

  // ---- sign in -----------------------------------------------------------------------------

  function signOut(message) {
    state.token = '';
    sessionStorage.removeItem('acs-token');
    $('app').hidden = true;
    $('who').hidden = true;
    $('login').hidden = false;
    var e = $('login-error');
    e.hidden = !message;
    e.textContent = message || '';
  }

  function signIn(token) {
    state.token = token;
    var done = progress('Signing in…');
    return api('/api/v1/me').then(function (me) {
      sessionStorage.setItem('acs-token', token);
      $('login').hidden = true;
      $('app').hidden = false;
      $('who').hidden = false;
      $('who-name').textContent = 'Signed in as ' + me.name + ' (' + me.role + ')';
      done('');
      loadFleet();
    }).catch(function (err) {
      done('');
      if (err.message !== 'not signed in') signOut('Sign-in failed: ' + err.message);
    });
  }

  // ---- range -------------------------------------------------------------------------------

  function todayIn(tz) {
    try {
      var p = new Intl.DateTimeFormat('en-CA', { timeZone: tz, year: 'numeric', month: '2-digit', day: '2-digit' }).format(new Date());
      return p.slice(0, 10);
    } catch (e) { return new Date().toISOString().slice(0, 10); }
  }
  function addDays(date, n) { return new Date(Date.parse(date + 'T00:00:00Z') + n * 86400000).toISOString().slice(0, 10); }

  function rangeQuery() {
    var p = new URLSearchParams();
    p.set('tz', $('tz').value.trim() || 'UTC');
    p.set('from', $('from').value);
    p.set('to', $('to').value);
    return p;
  }
  function filterQuery(p) {
    ['oui', 'productClass', 'softwareVersion', 'tag'].forEach(function (k) {
      var v = $('f-' + k).value.trim();
      if (v) p.set(k, v);
    });
    return p;
  }
  function tz() { return $('tz').value.trim() || 'UTC'; }

  // ---- tables ------------------------------------------------------------------------------

  function table(container, columns, rows, emptyText, rowClass) {
    var c = $(container);
    c.textContent = '';
    if (!rows.length) { c.appendChild(el('p', { className: 'empty', text: emptyText })); return; }
    var head = el('tr', null, columns.map(function (col) { return el('th', { text: col.label }); }));
    var body = rows.map(function (r) {
      var tr = el('tr', null, columns.map(function (col) {
        var v = col.value(r);
        return el('td', { text: v === null || v === undefined ? '—' : String(v), className: col.text ? 'text' : '' });
      }));
      if (rowClass) { var rc = rowClass(r); if (rc) tr.className = rc; }
      return tr;
    });
    c.appendChild(el('table', null, [el('thead', null, [head]), el('tbody', null, body)]));
  }

  function cards(container, items) {
    var c = $(container);
    c.textContent = '';
    items.forEach(function (it) {
      c.appendChild(el('div', { 'data-card': it.key }, [el('b', { text: it.value }), el('span', { text: it.label })]));
    });
  }

  // ---- charts ------------------------------------------------------------------------------

  function chartWidth(id) { return Math.max(320, $(id).clientWidth - 14); }

  function plot(id, opts, data) {
    if (state.charts[id]) { state.charts[id].destroy(); delete state.charts[id]; }
    var target = $(id);
    target.textContent = '';
    opts.width = chartWidth(id);
    opts.height = opts.height || 240;
    var zone = tz();
    opts.tzDate = function (ts) { return uPlot.tzDate(new Date(ts * 1e3), zone); };
    state.charts[id] = new uPlot(opts, data, target);
    target.setAttribute('data-points', String(data[0].length));
  }

  var bars = uPlot.paths && uPlot.paths.bars ? uPlot.paths.bars({ size: [0.6, 60] }) : null;
  var bars2 = uPlot.paths && uPlot.paths.bars ? uPlot.paths.bars({ size: [0.3, 30], align: 1 }) : null;
  var stepped = uPlot.paths && uPlot.paths.stepped ? uPlot.paths.stepped({ align: 1 }) : null;

  /** Daily charts: one slot per local day (x = its index), labelled with its date. */
  function dayX(rows) { return rows.map(function (r, i) { return i; }); }
  function dayAxes(rows, opts) {
    var step = Math.max(1, Math.ceil(rows.length / 12));
    opts.scales.x = { time: false, range: [-0.5, Math.max(0.5, rows.length - 0.5)] };
    opts.axes[0] = {
      splits: function () { return rows.map(function (r, i) { return i; }).filter(function (i) { return i % step === 0; }); },
      values: function (u, splits) { return splits.map(function (i) { return rows[i] ? rows[i].date.slice(5) + (rows[i].hours !== 24 ? ' (' + rows[i].hours + 'h)' : '') : ''; }); },
    };
    opts.series[0] = { label: 'day', value: function (u, i) { return i === null || !rows[i] ? '--' : rows[i].date; } };
    return opts;
  }

  // ---- fleet -------------------------------------------------------------------------------

  function loadFleet() {
    showError('');
    var q = filterQuery(rangeQuery());
    var done = progress('Loading the fleet report…');
    var qs = q.toString();
    var top = new URLSearchParams(q); top.set('limit', '20');
    var off = filterQuery(new URLSearchParams()); off.set('limit', '20');
    return Promise.all([
      api('/api/v1/reports/fleet/daily?' + qs),
      api('/api/v1/reports/fleet/top-disconnects?' + top.toString()),
      api('/api/v1/reports/fleet/breakdown?' + qs),
      api('/api/v1/reports/fleet/offline?' + off.toString()),
    ]).then(function (r) {
      renderFleet(r[0], r[1], r[2], r[3]);
      done('Fleet report for ' + r[0].from + ' to ' + r[0].to + ' (' + r[0].tz + ').');
    }).catch(function (err) { done(''); if (err.message !== 'not signed in') showError('The fleet report failed: ' + err.message); });
  }

  function renderFleet(daily, top, breakdown, offline) {
    var rows = daily.items;
    var sum = function (k) { return rows.reduce(function (s, r) { return s + (r[k] || 0); }, 0); };
    var pending = rows.filter(function (r) { return !r.final; }).length;
    var finalRows = rows.filter(function (r) { return r.final; });
    var dc = finalRows.reduce(function (s, r) { return s + (r.disconnects || 0); }, 0);
    cards('fleet-cards', [
      { key: 'sessions', label: 'sessions', value: fmtNum(sum('sessions')) },
      { key: 'connected', label: 'connected time', value: fmtDuration(sum('connectedMs')) },
      { key: 'disconnects', label: 'disconnects' + (pending ? ' (finalised days)' : ''), value: fmtNum(dc) },
      { key: 'boots', label: 'boots (' + fmtNum(sum('requestedBoots')) + ' requested)', value: fmtNum(sum('boots')) },
      { key: 'offline', label: 'devices offline now', value: fmtNum(offline.total) },
    ]);
    var note = $('fleet-note');
    note.hidden = !pending || daily.source !== 'fleet-rollups';
    note.textContent = pending + ' of ' + rows.length + ' days are not finalised yet: active devices, connected time per device and disconnects appear the day after a day ends.';
    var empty = $('fleet-empty');
    empty.hidden = sum('sessions') > 0;
    empty.textContent = 'No sessions in this range' + (daily.source === 'device-rollups' ? ' for the ' + daily.devices + ' devices matching the filter' : '') + '. Pick other dates, or check the devices point their ACS URL at this server.';

    var x = dayX(rows);
    plot('chart-fleet-sessions', dayAxes(rows, {
      series: [
        {},
        { label: 'sessions', stroke: '#2563eb', fill: 'rgba(37,99,235,0.35)', paths: bars, scale: 'n' },
        { label: 'connected (h)', stroke: '#16a34a', width: 2, scale: 'h', points: { size: 6 } },
      ],
      axes: [{}, { scale: 'n', label: 'sessions' }, { scale: 'h', side: 1, label: 'hours connected', grid: { show: false } }],
      scales: { n: { range: function (u, a, b) { return [0, Math.max(1, b * 1.1)]; } } },
    }), [x, rows.map(function (r) { return r.sessions; }), rows.map(function (r) { return r.connectedMs / 3600000; })]);
    plot('chart-fleet-durations', dayAxes(rows, {
      series: [
        {},
        { label: 'median session (s)', stroke: '#9333ea', width: 2, scale: 's' },
        { label: '95th percentile (s)', stroke: '#c026d3', dash: [6, 4], width: 2, scale: 's' },
        { label: 'disconnects', stroke: '#dc2626', fill: 'rgba(220,38,38,0.3)', paths: bars2, scale: 'd' },
      ],
      axes: [{}, { scale: 's', label: 'seconds' }, { scale: 'd', side: 1, label: 'disconnects', grid: { show: false } }],
      scales: { d: { range: function (u, a, b) { return [0, Math.max(1, (b || 0) * 1.1)]; } } },
    }), [x,
      rows.map(function (r) { return r.sessionP50Ms === null ? null : r.sessionP50Ms / 1000; }),
      rows.map(function (r) { return r.sessionP95Ms === null ? null : r.sessionP95Ms / 1000; }),
      rows.map(function (r) { return r.disconnects; })]);

    table('table-fleet-daily', [
      { label: 'day', value: function (r) { return r.date + (r.hours !== 24 ? ' (' + r.hours + ' h)' : ''); } },
      { label: 'sessions', value: function (r) { return fmtNum(r.sessions); } },
      { label: 'connected', value: function (r) { return fmtDuration(r.connectedMs); } },
      { label: 'active devices', value: function (r) { return fmtNum(r.activeDevices); } },
      { label: 'session p50', value: function (r) { return fmtDuration(r.sessionP50Ms); } },
      { label: 'session p95', value: function (r) { return fmtDuration(r.sessionP95Ms); } },
      { label: 'connected/device p50', value: function (r) { return fmtDuration(r.connectedPerDeviceP50Ms); } },
      { label: 'connected/device p95', value: function (r) { return fmtDuration(r.connectedPerDeviceP95Ms); } },
      { label: 'disconnects', value: function (r) { return fmtNum(r.disconnects); } },
      { label: 'boots', value: function (r) { return fmtNum(r.boots); } },
      { label: 'faults/timeouts/aborts', value: function (r) { return r.faulted + '/' + r.timedOut + '/' + r.aborted; } },
      { label: 'availability', value: function (r) { return fmtPct(r.availability); } },
    ], rows, 'No days in the range.', function (r) { return r.final ? '' : 'pending'; });
    table('table-top', [
      { label: '#', value: function (r) { return r.rank; } },
      { label: 'device', value: function (r) { return r.device; }, text: true },
      { label: 'disconnects', value: function (r) { return fmtNum(r.disconnects); } },
      { label: 'model', value: function (r) { return r.productClass; }, text: true },
      { label: 'version', value: function (r) { return r.softwareVersion; }, text: true },
      { label: 'last inform', value: function (r) { return fmtTime(r.lastInformAt, tz()); } },
    ], top.items, top.final ? 'No device dropped off the network in this range.' : 'No disconnects recorded yet: disconnects are counted once a day is finalised (the day after it ends).');
    table('table-breakdown', [
      { label: 'model', value: function (r) { return r.productClass || '(none)'; }, text: true },
      { label: 'OUI', value: function (r) { return r.oui; }, text: true },
      { label: 'version', value: function (r) { return r.softwareVersion || '(unknown)'; }, text: true },
      { label: 'device-days', value: function (r) { return fmtNum(r.deviceDays); } },
      { label: 'sessions', value: function (r) { return fmtNum(r.sessions); } },
      { label: 'connected', value: function (r) { return fmtDuration(r.connectedMs); } },
      { label: 'disconnects', value: function (r) { return fmtNum(r.disconnects); } },
      { label: 'session p50', value: function (r) { return fmtDuration(r.sessionP50Ms); } },
      { label: 'session p95', value: function (r) { return fmtDuration(r.sessionP95Ms); } },
    ], breakdown.items, 'No sessions in this range, so no models or versions to compare.');
    table('table-offline', [
      { label: 'device', value: function (r) { return r.device; }, text: true },
      { label: 'model', value: function (r) { return r.productClass; }, text: true },
      { label: 'last inform', value: function (r) { return fmtTime(r.lastInformAt, tz()); } },
      { label: 'offline for', value: function (r) { return r.onlineUntil ? fmtDuration(Date.now() - Date.parse(r.onlineUntil)) : '—'; } },
    ], offline.items, 'Every device informed within 1.5 × its periodic interval: none is offline now.');
  }

  // ---- device ------------------------------------------------------------------------------

  function search(q) {
    showError('');
    var done = progress('Searching devices…');
    var p = new URLSearchParams();
    p.set(q.indexOf('-') > 0 && q.split('-').length >= 3 && !/-$/.test(q) ? 'id' : 'idPrefix', q);
    p.set('limit', '20');
    return api('/api/v1/devices?' + p.toString()).then(function (page) {
      if (!page.items.length && p.has('id')) { p.delete('id'); p.set('idPrefix', q); return api('/api/v1/devices?' + p.toString()); }
      return page;
    }).then(function (page) {
      var ul = $('results');
      ul.textContent = '';
      if (!page.items.length) ul.appendChild(el('li', { className: 'empty', text: 'No device id starts with "' + q + '". Ids are OUI-ProductClass-SerialNumber.' }));
      page.items.forEach(function (d) {
        var b = el('button', { type: 'button', text: d.id + ' — ' + d.deviceId.productClass + (d.softwareVersion ? ' ' + d.softwareVersion : '') + (d.online ? ' (online)' : ' (offline)') });
        b.addEventListener('click', function () { showDevice(d.id); });
        ul.appendChild(el('li', null, [b]));
      });
      done(page.total + ' device' + (page.total === 1 ? '' : 's') + ' found' + (page.total > page.items.length ? ' (first ' + page.items.length + ' shown)' : '') + '.');
      if (page.items.length === 1) showDevice(page.items[0].id);
    }).catch(function (err) { done(''); if (err.message !== 'not signed in') showError('Search failed: ' + err.message); });
  }

  function showDevice(id) {
    state.device = id;
    showError('');
    var enc = encodeURIComponent(id);
    var q = rangeQuery().toString();
    var done = progress('Loading ' + id + '…');
    return Promise.all([
      api('/api/v1/reports/devices/' + enc + '/timeline?' + q),
      api('/api/v1/reports/devices/' + enc + '/daily?' + q),
    ]).then(function (r) {
      renderDevice(r[0], r[1]);
      done('Device ' + id + ', ' + r[1].from + ' to ' + r[1].to + ' (' + r[1].tz + ').');
    }).catch(function (err) { done(''); if (err.message !== 'not signed in') showError('The device report failed: ' + err.message); });
  }

  function renderDevice(tl, daily) {
    $('device-view').hidden = false;
    $('device-title').textContent = tl.device;
    var days = daily.items;
    var sum = function (k) { return days.reduce(function (s, r) { return s + (r[k] || 0); }, 0); };
    var exp = sum('expectedInforms');
    cards('device-cards', [
      { key: 'sessions', label: 'sessions', value: fmtNum(sum('sessions')) },
      { key: 'connected', label: 'connected time', value: fmtDuration(sum('connectedMs')) },
      { key: 'disconnects', label: 'disconnects (' + (days.some(function (d) { return d.disconnectSource === 'uptime'; }) ? 'device uptime' : 'inferred from missed informs and boots') + ')', value: fmtNum(sum('disconnects')) },
      { key: 'reboots', label: 'reboots (' + tl.reboots.filter(function (b) { return b.requested; }).length + ' requested)', value: fmtNum(tl.reboots.length) },
      { key: 'gaps', label: 'gaps in periodic informs', value: fmtNum(tl.gaps.length) },
      { key: 'availability', label: 'availability (informs arrived / expected)', value: exp >= 1 ? fmtPct(Math.min(1, sum('periodicInforms') / exp)) : '—' },
      { key: 'interval', label: 'periodic inform interval' + (daily.intervalSource === 'default' ? ' (default)' : ''), value: fmtDuration(daily.intervalS * 1000) },
    ]);
    var empty = $('device-empty');
    empty.hidden = tl.items.length > 0;
    empty.textContent = 'This device had no session between ' + fmtTime(tl.start, tl.tz) + ' and ' + fmtTime(tl.end, tl.tz) + ' (' + tl.tz + ')' + (tl.gaps.length ? ': it is silent — see the gap below.' : '.');

    // Timeline: connected state as a step line (1 while a session is open), reboots and gaps as markers.
    var xs = [], conn = [], boots = [], gaps = [];
    var t0 = Date.parse(tl.start) / 1000, t1 = Date.parse(tl.end) / 1000;
    var push = function (x, c, b, g) { xs.push(x); conn.push(c); boots.push(b); gaps.push(g); };
    push(t0, 0, null, null);
    tl.gaps.forEach(function (g) { var a = Date.parse(g.from) / 1000; if (a >= t0 && a <= t1) push(a, null, null, 0.5); });
    tl.items.forEach(function (s) {
      var a = Math.max(t0, Date.parse(s.connectedAt) / 1000);
      var b = s.disconnectedAt ? Date.parse(s.disconnectedAt) / 1000 : Math.min(t1, Date.now() / 1000);
      push(a, 1, s.reboot ? 1.15 : null, null);
      push(Math.max(a, b), 0, null, null);
    });
    push(t1, 0, null, null);
    var order = xs.map(function (x, i) { return i; }).sort(function (a, b) { return xs[a] - xs[b] || a - b; });
    var pick = function (arr) { return order.map(function (i) { return arr[i]; }); };
    plot('chart-timeline', {
      height: 180,
      series: [
        {},
        { label: 'connected', stroke: '#2563eb', fill: 'rgba(37,99,235,0.3)', paths: stepped, spanGaps: true, points: { show: false } },
        { label: 'reboot', stroke: '#dc2626', width: 0, points: { show: true, size: 9, fill: '#dc2626' } },
        { label: 'gap (missed informs)', stroke: '#f59e0b', width: 0, points: { show: true, size: 9, fill: '#f59e0b' } },
      ],
      axes: [{}, { values: function (u, v) { return v.map(function (x) { return x === 1 ? 'on' : x === 0 ? 'off' : ''; }); } }],
      scales: { x: { time: true, range: [t0, t1] }, y: { range: [0, 1.3] } },
    }, [pick(xs), pick(conn), pick(boots), pick(gaps)]);
    plot('chart-device-daily', dayAxes(days, {
      series: [
        {},
        { label: 'sessions', stroke: '#2563eb', fill: 'rgba(37,99,235,0.35)', paths: bars, scale: 'n' },
        { label: 'connected (min)', stroke: '#16a34a', width: 2, scale: 'm', points: { size: 6 } },
        { label: 'disconnects', stroke: '#dc2626', fill: 'rgba(220,38,38,0.35)', paths: bars2, scale: 'n' },
      ],
      axes: [{}, { scale: 'n', label: 'count' }, { scale: 'm', side: 1, label: 'minutes connected', grid: { show: false } }],
      scales: { n: { range: function (u, a, b) { return [0, Math.max(1, b * 1.1)]; } } },
    }), [dayX(days), days.map(function (r) { return r.sessions; }), days.map(function (r) { return r.connectedMs / 60000; }), days.map(function (r) { return r.disconnects; })]);

    table('table-device-daily', [
      { label: 'day', value: function (r) { return r.date + (r.hours !== 24 ? ' (' + r.hours + ' h)' : ''); } },
      { label: 'sessions', value: function (r) { return fmtNum(r.sessions); } },
      { label: 'connected', value: function (r) { return fmtDuration(r.connectedMs); } },
      { label: 'disconnects', value: function (r) { return fmtNum(r.disconnects) + ' (' + r.disconnectSource + ')'; } },
      { label: 'boots', value: function (r) { return r.boots + (r.requestedBoots ? ' (' + r.requestedBoots + ' requested)' : ''); } },
      { label: 'informs', value: function (r) { return r.periodicInforms + ' / ' + r.expectedInforms; } },
      { label: 'availability', value: function (r) { return fmtPct(r.availability); } },
      { label: 'first contact', value: function (r) { return fmtTime(r.firstContact, tl.tz); } },
      { label: 'last contact', value: function (r) { return fmtTime(r.lastContact, tl.tz); } },
    ], days, 'No days in the range.');
    table('table-timeline', [
      { label: 'connected', value: function (r) { return fmtTime(r.connectedAt, tl.tz); } },
      { label: 'disconnected', value: function (r) { return r.status === 'open' ? 'still connected' : fmtTime(r.disconnectedAt, tl.tz); } },
      { label: 'duration', value: function (r) { return r.status === 'open' ? fmtDuration(Date.now() - Date.parse(r.connectedAt)) + ' so far' : fmtDuration(r.durationMs); } },
      { label: 'events', value: function (r) { return r.events.join(', '); }, text: true },
      { label: 'outcome', value: function (r) { return r.outcome || r.status; }, text: true },
      { label: 'gap before', value: function (r) { return r.gapBeforeMs === null ? '' : fmtDuration(r.gapBeforeMs) + ' (' + r.missedInformsBefore + ' missed)'; } },
      { label: 'reboot', value: function (r) { return r.reboot || ''; }, text: true },
    ], tl.items.slice().reverse().slice(0, 500), 'No sessions in this range.' + (tl.truncated ? '' : ''));
    if (tl.truncated) $('status').textContent = 'Showing the first ' + tl.items.length + ' sessions; the CSV has them all.';
  }

  // ---- wiring ------------------------------------------------------------------------------

  function init() {
    var zone = Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
    var params = new URLSearchParams(location.hash.slice(1));
    $('tz').value = params.get('tz') || zone;
    var zones = (Intl.supportedValuesOf ? Intl.supportedValuesOf('timeZone') : ['UTC', 'Europe/London', 'Europe/Berlin', 'America/New_York', 'Asia/Kolkata', 'Asia/Tokyo']);
    var dl = $('zones');
    zones.forEach(function (z) { dl.appendChild(el('option', { value: z })); });
    $('to').value = params.get('to') || todayIn($('tz').value);
    $('from').value = params.get('from') || addDays($('to').value, -13);

    $('login-form').addEventListener('submit', function (e) { e.preventDefault(); signIn($('token').value.trim()); });
    $('signout').addEventListener('click', function () { signOut(''); });
    $('range').addEventListener('submit', function (e) {
      e.preventDefault();
      if ($('from').value > $('to').value) { showError('"From" is after "To".'); return; }
      loadFleet();
      if (state.device) showDevice(state.device);
    });
    $('search').addEventListener('submit', function (e) {
      e.preventDefault();
      var q = $('q').value.trim();
      if (!q) { showError('Type a device id or the start of one.'); return; }
      search(q);
    });
    $('tab-fleet').addEventListener('click', function () { tab('fleet'); });
    $('tab-device').addEventListener('click', function () { tab('device'); });
    Array.prototype.forEach.call(document.querySelectorAll('button.csv'), function (b) {
      b.addEventListener('click', function () { csv(b.getAttribute('data-csv')); });
    });
    window.addEventListener('resize', function () {
      Object.keys(state.charts).forEach(function (id) { state.charts[id].setSize({ width: chartWidth(id), height: state.charts[id].height }); });
    });
    if (params.get('device')) { $('q').value = params.get('device'); }
    if (state.token) {
      signIn(state.token).then(function () {
        if (params.get('device')) { tab('device'); search(params.get('device')); }
      });
    } else signOut('');
  }

  function tab(which) {
    $('tab-fleet').setAttribute('aria-selected', String(which === 'fleet'));
    $('tab-device').setAttribute('aria-selected', String(which === 'device'));
    $('fleet').hidden = which !== 'fleet';
    $('device').hidden = which !== 'device';
    Object.keys(state.charts).forEach(function (id) { state.charts[id].setSize({ width: chartWidth(id), height: state.charts[id].height }); });
  }

  function csv(which) {
    var q = rangeQuery();
    q.set('format', 'csv');
    var f = filterQuery(new URLSearchParams(q));
    var enc = state.device ? encodeURIComponent(state.device) : '';
    var map = {
      'fleet-daily': ['/api/v1/reports/fleet/daily?' + f, 'fleet-daily.csv'],
      top: ['/api/v1/reports/fleet/top-disconnects?' + f + '&limit=1000', 'top-disconnects.csv'],
      breakdown: ['/api/v1/reports/fleet/breakdown?' + f, 'breakdown.csv'],
      offline: ['/api/v1/reports/fleet/offline?' + filterQuery(new URLSearchParams('format=csv')), 'offline.csv'],
      'device-daily': ['/api/v1/reports/devices/' + enc + '/daily?' + q, 'device-daily.csv'],
      timeline: ['/api/v1/reports/devices/' + enc + '/timeline?' + q, 'timeline.csv'],
    };
    var m = map[which];
    if (m) download(m[0], m[1]);
  }

  if (typeof uPlot === 'undefined') {
    document.addEventListener('DOMContentLoaded', function () { showError('The chart library did not load (/reports/assets/uPlot.iife.min.js). Run npm install on the server.'); });
  }
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
})();
