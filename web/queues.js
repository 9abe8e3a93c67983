// The job queues page (issue 5): read-only — counts per state, schedules with their next run,
// failed jobs with their reasons — from GET /api/v1/queues and /api/v1/queues/{name}/failed.
// Signs in with the same API token as the report page (sessionStorage of this tab).
(function () {
  'use strict';
  var token = sessionStorage.getItem('acs-token') || '';
  var $ = function (id) { return document.getElementById(id); };
  function cell(tr, text, cls) {
    var td = document.createElement('td');
    td.textContent = text;
    if (cls) td.className = cls;
    tr.appendChild(td);
  }
  function api(path) {
    return fetch(path, { headers: { Authorization: 'Bearer ' + token, Accept: 'application/json' } }).then(function (res) {
      return res.json().then(function (body) {
        if (!res.ok) throw Object.assign(new Error((body && body.error && body.error.message) || res.statusText), { status: res.status });
        return body;
      });
    });
  }
  function show(signedIn) {
    $('login').hidden = signedIn;
    $('app').hidden = !signedIn;
  }
  function render(queues, failed) {
    var tb = $('queues').tBodies[0];
    tb.textContent = '';
    queues.forEach(function (q) {
      var tr = document.createElement('tr');
      cell(tr, q.name + (q.processing ? '' : ' (not processed here)'));
      ['waiting', 'active', 'delayed', 'completed', 'failed'].forEach(function (k) {
        cell(tr, String(q.counts[k]), 'n' + (k === 'failed' && q.counts[k] ? ' bad' : ''));
      });
      cell(tr, q.schedules.map(function (s) {
        return s.name + ' ' + (s.cron ? s.cron : 'every ' + Math.round(s.everyMs / 1000) + ' s') + ' → ' + (s.next ? new Date(s.next).toLocaleString() : '—');
      }).join('\n') || '—');
      tb.appendChild(tr);
    });
    var fb = $('failed').tBodies[0];
    fb.textContent = '';
    failed.forEach(function (f) {
      var tr = document.createElement('tr');
      cell(tr, f.queue);
      cell(tr, f.name + ' ' + f.id);
      cell(tr, String(f.attemptsMade), 'n');
      cell(tr, f.failedAt ? new Date(f.failedAt).toLocaleString() : '');
      cell(tr, f.failedReason, 'bad');
      fb.appendChild(tr);
    });
    $('failed-empty').hidden = failed.length > 0;
  }
  function refresh() {
    return api('/api/v1/queues').then(function (v) {
      return Promise.all(v.items.map(function (q) {
        return q.counts.failed ? api('/api/v1/queues/' + encodeURIComponent(q.name) + '/failed?limit=20').then(function (r) {
          return r.items.map(function (i) { return Object.assign({ queue: q.name }, i); });
        }) : [];
      })).then(function (lists) {
        render(v.items, [].concat.apply([], lists));
        $('error').hidden = true;
        $('status').textContent = 'Updated ' + new Date().toLocaleTimeString() + ' (every 5 s)';
      });
    }).catch(function (err) {
      if (err.status === 401) {
        sessionStorage.removeItem('acs-token');
        token = '';
        show(false);
        return;
      }
      $('error').textContent = err.message;
      $('error').hidden = false;
    });
  }
  $('login-form').addEventListener('submit', function (e) {
    e.preventDefault();
    token = $('token').value.trim();
    api('/api/v1/queues').then(function () {
      sessionStorage.setItem('acs-token', token);
      show(true);
      refresh();
    }).catch(function (err) {
      $('login-error').textContent = err.message;
      $('login-error').hidden = false;
    });
  });
  show(!!token);
  if (token) refresh();
  setInterval(function () { if (token) refresh(); }, 5000);
})();
