// The Boards demo app: a host app using the headroom browser SDK.
//
// A real app gets its identity (user, account, ts, user_hash) from its own
// backend, which signs it with the identity secret (docs/SDK.md). This static
// demo asks headroomd's demo-only /demo/identity endpoint instead. Boards
// themselves live in this browser's localStorage; the count that matters
// (the boards limit) is headroom's board_count meter, fed by track().
(function () {
  'use strict';
  var qs = new URLSearchParams(location.search);
  var account = qs.get('account') || 'acme';
  var user = qs.get('user') || (account === 'globex' ? 'g1' : 'u1');
  var $ = function (id) { return document.getElementById(id); };
  var storeKey = 'boards:' + account;
  var privateBoards = false;

  function names() {
    try { return JSON.parse(localStorage.getItem(storeKey)) || []; } catch (e) { return []; }
  }

  function note(text) { $('note').textContent = text; }

  // The boards list: as many as headroom has counted, named from localStorage.
  // d: the boards decision (null: keep the last one).
  var lastBoards = null;
  function renderBoards(d) {
    d = d || lastBoards;
    lastBoards = d;
    var list = $('board-list');
    var n = d && typeof d.usage === 'number' ? d.usage : names().length;
    var saved = names();
    list.textContent = '';
    for (var i = 0; i < n; i++) {
      var li = document.createElement('li');
      li.textContent = saved[i] || 'Board ' + (i + 1);
      var small = document.createElement('small');
      small.textContent = privateBoards ? 'Private' : 'Public';
      li.appendChild(small);
      list.appendChild(li);
    }
    $('empty').hidden = n > 0;
    if (d && d.type === 'limit') {
      $('usage').textContent = d.unlimited ? n + ' boards' : n + ' of ' + d.limit + ' boards';
    }
  }

  // Select the current account in the switcher; add it when it is another one.
  var sel = $('account');
  var current = account + ':' + user;
  if (!Array.prototype.some.call(sel.options, function (o) { return o.value === current; })) {
    sel.add(new Option(user + ' @ ' + account, current));
  }
  sel.value = current;
  sel.addEventListener('change', function () {
    var p = sel.value.split(':');
    location.search = '?account=' + encodeURIComponent(p[0]) + '&user=' + encodeURIComponent(p[1]);
  });

  headroom.on('decisions', function (features) {
    if (features.boards) renderBoards(features.boards);
  });
  headroom.on('trial:started', function (e) {
    note('Your 14-day trial of ' + e.feature.replace(/_/g, ' ') + ' has started.');
  });

  $('new-board').addEventListener('click', function () {
    headroom.check('boards').then(function (d) {
      if (!d.allowed) return; // headroom shows the paywall the campaign chose
      var all = names();
      all.push('Board ' + (all.length + 1));
      localStorage.setItem(storeKey, JSON.stringify(all));
      return headroom.track('Board Created', { name: all[all.length - 1] }).then(function () {
        // the meter counted it: one more board than the check saw
        renderBoards(Object.assign({}, d, { usage: d.usage + 1 }));
        note('Board created.');
      });
    }).catch(function (e) { note('Could not create the board: ' + e.message); });
  });

  // These run only when the feature is allowed: headroom intercepts clicks on
  // locked elements and shows the upgrade prompt instead.
  $('make-private').addEventListener('click', function () {
    privateBoards = !privateBoards;
    $('make-private').firstChild.textContent = privateBoards ? 'Make public' : 'Make private';
    renderBoards(null);
    note(privateBoards ? 'Your boards are now private.' : 'Your boards are public again.');
  });
  $('sso').addEventListener('click', function () { note('SSO settings: connect your SAML identity provider.'); });

  fetch('/demo/identity?user=' + encodeURIComponent(user) + '&account=' + encodeURIComponent(account))
    .then(function (r) {
      if (!r.ok) throw new Error('identity: HTTP ' + r.status);
      return r.json();
    })
    .then(function (id) {
      return headroom.init({ key: id.key, user: id.user, account: id.account, ts: id.ts, userHash: id.user_hash });
    })
    .then(function (b) {
      var plan = b && b.plan ? b.plan.charAt(0).toUpperCase() + b.plan.slice(1) : '';
      $('plan').textContent = plan ? plan + ' plan' : '';
      document.body.setAttribute('data-ready', 'true');
    })
    .catch(function (e) {
      note('headroom is unavailable: ' + e.message);
      document.body.setAttribute('data-ready', 'error');
    });
})();
