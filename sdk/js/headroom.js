/* headroom.js: the browser SDK of headroom (https://github.com/headroom).
 *
 * One file, no dependencies, no build step: <script src="/sdk/headroom.js">
 * defines window.headroom. It asks headroomd for decisions (POST /v1/check),
 * locks the elements marked data-headroom-feature="<feature>" that the
 * account's plan does not include, and shows the in-app prompts (paywall
 * modal, tooltip, banner, checklist item, lock badge) that the server's
 * campaigns choose. The browser holds only the publishable key and an
 * identity (user, account, ts, userHash) signed by the host app's server.
 *
 * The one design decision: the server decides, the SDK renders. Which prompt,
 * when, in which language and how often is answered by GET /v1/prompts and
 * GET /v1/bootstrap; the SDK only guarantees that a prompt is shown at most
 * once per page view and reports impression/click/dismiss back. Every text
 * from the server goes into the DOM through textContent, never as HTML.
 * Docs: docs/SDK.md.
 */
(function (root) {
  'use strict';
  if (root.headroom && root.headroom.version) return; // loaded twice

  var doc = root.document;
  var TTL = 30000; // ms a fetched bootstrap stays fresh for re-use
  var FOCUSABLE = 'a[href],button:not([disabled]),input:not([disabled]),select:not([disabled]),' +
    'textarea:not([disabled]),[tabindex]:not([tabindex="-1"])';
  var script = doc && doc.currentScript;
  var scriptOrigin = script && script.src ? new URL(script.src, root.location.href).origin : root.location.origin;

  var cfg = null;       // init options, normalised
  var boot = null;      // the last bootstrap response
  var bootAt = 0;       // when it was fetched (ms)
  var shown = {};       // prompt ids (and campaigns) shown in this page view
  var open = [];        // prompts on screen: {prompt, el, close}
  var handlers = {};    // event name -> [fn]
  var observer = null;
  var uid = 0;

  // ---- small helpers ----------------------------------------------------

  function emit(name, arg) {
    (handlers[name] || []).slice().forEach(function (fn) {
      try { fn(arg); } catch (e) { setTimeout(function () { throw e; }); }
    });
  }

  function fail(code, message, status) {
    var e = new Error(message);
    e.name = 'HeadroomError';
    e.code = code;
    e.status = status || 0;
    return e;
  }

  // Reports a failure nobody awaits: an 'error' event and a console warning.
  function report(e) {
    emit('error', e);
    if (root.console) console.warn('headroom:', e && e.message);
  }

  function uuid() {
    if (root.crypto && crypto.randomUUID) return crypto.randomUUID();
    var b = new Uint8Array(16);
    crypto.getRandomValues(b);
    b[6] = (b[6] & 15) | 64;
    b[8] = (b[8] & 63) | 128;
    var h = Array.prototype.map.call(b, function (x) { return (x + 256).toString(16).slice(1); }).join('');
    return h.slice(0, 8) + '-' + h.slice(8, 12) + '-' + h.slice(12, 16) + '-' + h.slice(16, 20) + '-' + h.slice(20);
  }

  function el(tag, attrs, text) {
    var n = doc.createElement(tag);
    for (var k in attrs || {}) if (attrs[k] != null) n.setAttribute(k, attrs[k]);
    if (text != null) n.textContent = text;
    return n;
  }

  function whenReady() {
    return new Promise(function (resolve) {
      if (doc.readyState === 'loading') doc.addEventListener('DOMContentLoaded', resolve, { once: true });
      else resolve();
    });
  }

  function page() { return root.location.pathname; }

  function query(extra) {
    var q = new URLSearchParams({ user: cfg.user, account: cfg.account, page: page() });
    if (cfg.locale) q.set('locale', cfg.locale);
    for (var k in extra) q.set(k, extra[k]);
    return q.toString();
  }

  // One API call: resolves with the JSON body, rejects with a HeadroomError
  // carrying the server's {"error":{"code","message"}} (or code 'network').
  function api(method, path, body) {
    if (!cfg) return Promise.reject(fail('not_initialized', 'call headroom.init() first'));
    var h = {
      Authorization: 'Bearer ' + cfg.key,
      'X-Headroom-User': cfg.user,
      'X-Headroom-Account': cfg.account,
      'X-Headroom-Ts': String(cfg.ts),
      'X-Headroom-User-Hash': cfg.userHash
    };
    var init = { method: method, headers: h, credentials: 'omit' };
    if (body !== undefined) {
      h['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    return fetch(cfg.url + path, init).then(function (res) {
      return res.text().then(function (text) {
        var json = null;
        try { json = text ? JSON.parse(text) : null; } catch (e) { /* not JSON */ }
        if (res.ok) return json;
        var er = json && json.error;
        throw fail(er && er.code || 'http_' + res.status, er && er.message || res.status + ' ' + res.statusText, res.status);
      });
    }, function (e) {
      throw fail('network', 'headroom: ' + (e && e.message || 'network error'));
    });
  }

  // ---- styles -------------------------------------------------------------

  var STYLES =
    '.headroom-p{--a:var(--headroom-accent,#4f46e5);--b:var(--headroom-bg,#fff);--f:var(--headroom-fg,#1f2937);' +
    '--r:var(--headroom-radius,10px);font:14px/1.45 var(--headroom-font,system-ui,-apple-system,"Segoe UI",sans-serif);' +
    'color:var(--f);background:var(--b);box-sizing:border-box;text-align:left}' +
    '.headroom-p *{box-sizing:border-box;font:inherit}' +
    '.headroom-p h2{margin:0 24px 6px 0;font-size:16px;font-weight:650}' +
    '.headroom-p p{margin:0 0 12px}' +
    '.headroom-cta{background:var(--a);color:#fff;border:0;border-radius:calc(var(--r)*.6);padding:8px 14px;font-weight:600;cursor:pointer}' +
    '.headroom-cta:disabled{opacity:.6;cursor:progress}' +
    '.headroom-x{position:absolute;top:6px;right:6px;width:28px;height:28px;border:0;border-radius:50%;' +
    'background:transparent;color:inherit;font-size:18px;line-height:1;cursor:pointer}' +
    '.headroom-x:hover{background:rgba(127,127,127,.15)}' +
    '.headroom-p :focus-visible{outline:2px solid var(--a);outline-offset:2px}' +
    '.headroom-msg:empty{display:none}.headroom-msg{margin:8px 0 0;font-size:13px;color:#b42318}' +
    '.headroom-shade{position:fixed;inset:0;z-index:2147483000;background:rgba(15,23,42,.45);' +
    'display:flex;align-items:center;justify-content:center;padding:16px}' +
    '.headroom-modal{position:relative;width:min(440px,100%);padding:22px;border-radius:var(--r);' +
    'box-shadow:0 20px 50px rgba(0,0,0,.3)}' +
    '.headroom-tip{position:absolute;z-index:2147483001;width:280px;padding:14px;border-radius:var(--r);' +
    'box-shadow:0 8px 24px rgba(0,0,0,.2);border:1px solid rgba(127,127,127,.25)}' +
    '.headroom-banner{position:fixed;top:8px;left:50%;transform:translateX(-50%);width:min(640px,calc(100% - 16px));' +
    'z-index:2147482999;display:flex;gap:12px;align-items:center;padding:10px 44px 10px 16px;border-radius:var(--r);' +
    'border-left:4px solid var(--a);box-shadow:0 6px 20px rgba(0,0,0,.18)}' +
    '.headroom-banner h2{margin:0;font-size:14px}.headroom-banner p{margin:0;flex:1}' +
    '.headroom-list{position:fixed;right:16px;bottom:16px;z-index:2147482998;width:300px;margin:0;padding:8px;' +
    'border-radius:var(--r);box-shadow:0 8px 24px rgba(0,0,0,.2);list-style:none}' +
    '.headroom-item{position:relative;list-style:none;padding:12px 36px 12px 12px}' +
    '.headroom-list .headroom-item+.headroom-item{border-top:1px solid rgba(127,127,127,.2)}' +
    '.headroom-lock{display:inline-flex;vertical-align:-2px;margin-left:6px;width:14px;height:14px;' +
    'color:var(--headroom-accent,#4f46e5)}.headroom-lock svg{width:100%;height:100%}' +
    '[data-headroom-locked="true"]{cursor:pointer}' +
    '@media (prefers-reduced-motion:no-preference){.headroom-tip,.headroom-modal,.headroom-item{animation:headroom-in .16s ease-out}}' +
    '@keyframes headroom-in{from{opacity:0;transform:translateY(4px)}}' +
    '@media (max-width:600px){.headroom-banner{flex-wrap:wrap}}';

  function style() {
    if (doc.getElementById('headroom-style')) return;
    var s = el('style', { id: 'headroom-style' }, STYLES);
    doc.head.appendChild(s);
  }

  // ---- lock badges ------------------------------------------------------

  var LOCK = '<svg viewBox="0 0 16 16" aria-hidden="true" focusable="false"><path fill="currentColor" ' +
    'd="M4 7V5a4 4 0 1 1 8 0v2h.5A1.5 1.5 0 0 1 14 8.5v6a1.5 1.5 0 0 1-1.5 1.5h-9A1.5 1.5 0 0 1 2 14.5v-6A1.5 ' +
    '1.5 0 0 1 3.5 7H4zm2 0h4V5a2 2 0 1 0-4 0v2z"/></svg>';

  // The name of what unlocks a denied decision: "Pro", "10 more boards" ...
  function upgradeName(d) {
    var u = d && (d.upgrade || (d.alternatives || [])[0]);
    return (u && (u.name || u.plan || u.addon)) || 'an upgrade';
  }

  function badge(node, feature, label) {
    var b = node.querySelector(':scope > .headroom-lock');
    var text = 'Locked: requires ' + label;
    if (!b) {
      b = el('span', { class: 'headroom-lock', role: 'img' });
      b.innerHTML = LOCK; // a constant, never server text
      node.appendChild(b);
    }
    if (b.getAttribute('aria-label') !== text) b.setAttribute('aria-label', text);
    b.title = text;
    if (node.getAttribute('data-headroom-locked') !== 'true') node.setAttribute('data-headroom-locked', 'true');
  }

  function unbadge(node) {
    var b = node.querySelector(':scope > .headroom-lock');
    if (b) b.remove();
    if (node.hasAttribute('data-headroom-locked')) node.removeAttribute('data-headroom-locked');
  }

  // Badges every [data-headroom-feature] the account may not use, removes the
  // badge from the others. Idempotent: the MutationObserver runs it on every
  // DOM change, including its own.
  function applyLocks() {
    if (!boot || !doc.body) return;
    var feats = boot.features || {};
    doc.querySelectorAll('[data-headroom-feature]').forEach(function (node) {
      if (node.closest('.headroom-p')) return;
      var f = node.getAttribute('data-headroom-feature');
      var d = feats[f];
      if (d && d.allowed === false) badge(node, f, upgradeName(d));
      else if (!node._headroomPrompt) unbadge(node);
    });
  }

  var pending = false;
  function scheduleLocks() {
    if (pending) return;
    pending = true;
    Promise.resolve().then(function () { pending = false; applyLocks(); });
  }

  function onClick(ev) {
    var node = ev.target && ev.target.closest && ev.target.closest('[data-headroom-locked="true"]');
    if (!node || node.closest('.headroom-p')) return;
    ev.preventDefault();
    ev.stopPropagation();
    ev.stopImmediatePropagation();
    var f = node.getAttribute('data-headroom-feature');
    var p = node._headroomPrompt;
    if (p) { render(p, node, true); return; } // a lock_badge prompt opens its own content
    check(f, 1, node).catch(report);
  }

  // ---- bootstrap --------------------------------------------------------

  function setBoot(b) {
    boot = b || {};
    boot.features = boot.features || {};
    bootAt = Date.now();
    emit('decisions', boot.features || {});
    applyLocks();
  }

  // noPrompts: decisions only, so a refresh never counts as a show
  function fetchBoot(noPrompts) {
    return api('GET', '/v1/bootstrap?' + query(noPrompts ? { prompts: '0' } : {})).then(function (b) {
      setBoot(b);
      return b;
    });
  }

  function showAll(prompts, opener) {
    (prompts || []).forEach(function (p) { show(p, opener); });
  }

  // ---- the public API ---------------------------------------------------

  function init(o) {
    o = o || {};
    var id = {
      url: String(o.url || scriptOrigin).replace(/\/+$/, ''),
      key: o.key,
      user: o.user,
      account: o.account,
      ts: o.ts,
      userHash: o.userHash || o.user_hash,
      locale: o.locale || (doc.documentElement.lang || '')
    };
    if (!id.key || !id.user || !id.account || id.ts == null || !id.userHash)
      return Promise.reject(fail('invalid_request', 'headroom.init needs key, user, account, ts and userHash'));
    if (!/^pk_/.test(id.key))
      return Promise.reject(fail('invalid_request', 'headroom.init takes the publishable key (pk_...): never put a secret key in a page'));
    cfg = id;
    boot = null;
    return whenReady().then(function () {
      style();
      if (!observer) {
        root.addEventListener('click', onClick, true);
        observer = new MutationObserver(scheduleLocks);
        observer.observe(doc.body, { childList: true, subtree: true, attributes: true, attributeFilter: ['data-headroom-feature'] });
      }
      if (o.bootstrap) {
        setBoot(o.bootstrap);
        return o.bootstrap;
      }
      return fetchBoot();
    }).then(function (b) {
      showAll(b && b.prompts);
      return b;
    });
  }

  // What the last bootstrap said about a feature (quantity 1), or null.
  function decision(feature) {
    return (boot && boot.features && boot.features[feature]) || null;
  }

  function check(feature, qty, opener) {
    qty = qty == null ? 1 : qty;
    opener = opener || doc.activeElement;
    return api('POST', '/v1/check', { account: cfg && cfg.account, feature: feature, quantity: qty }).then(function (d) {
      return d;
    }, function (e) {
      // offline: a fresh bootstrap decision still answers a quantity-1 check
      var c = decision(feature);
      if (e.code === 'network' && qty === 1 && c && Date.now() - bootAt < TTL) return Object.assign({ cached: true }, c);
      throw e;
    }).then(function (d) {
      if (qty === 1 && boot && !d.cached) {
        var was = boot.features[feature];
        boot.features[feature] = d;
        if (!was || was.allowed !== d.allowed) applyLocks();
      }
      var one = {};
      one[feature] = d;
      emit('decisions', one);
      if (d.allowed) return d;
      var trig = d.reason === 'limit_reached' ? 'limit_hit:' : /^(not_in_plan|trial_expired)$/.test(d.reason) ? 'feature_denied:' : null;
      if (!trig) return d;
      return prompts(trig + feature, opener).then(function () { return d; }, function (e) { report(e); return d; });
    });
  }

  function prompts(trigger, opener) {
    return api('GET', '/v1/prompts?' + query({ trigger: trigger })).then(function (r) {
      showAll(r && r.prompts, opener);
      return (r && r.prompts) || [];
    });
  }

  function track(event, props) {
    var body = {
      userId: cfg && cfg.user,
      event: event,
      properties: props || {},
      context: { groupId: cfg && cfg.account },
      messageId: uuid(),
      timestamp: new Date().toISOString()
    };
    return api('POST', '/v1/track', body).then(function (r) {
      bootAt = 0; // usage may have changed: the cached decisions are stale
      return prompts('event:' + event).then(function () { return r; }, function (e) { report(e); return r; });
    });
  }

  function refresh() {
    return fetchBoot(true);
  }

  function on(name, fn) {
    (handlers[name] = handlers[name] || []).push(fn);
    return function off() {
      var a = handlers[name] || [];
      var i = a.indexOf(fn);
      if (i >= 0) a.splice(i, 1);
    };
  }

  // ---- prompts ----------------------------------------------------------

  function postEvent(p, type) {
    return api('POST', '/v1/prompts/' + encodeURIComponent(p.id) + '/events',
      { type: type, user: cfg.user, account: cfg.account }).catch(report);
  }

  function anchorOf(c) {
    if (!c || !c.anchor) return null;
    var a = String(c.anchor);
    return doc.querySelector('[data-headroom-feature="' + CSS.escape(a) + '"]') || doc.getElementById(a);
  }

  function featureOf(p) {
    var c = p.content || {};
    var t = /^(feature_denied|limit_hit|element):(.+)$/.exec(p.trigger || '');
    return (c.cta && c.cta.feature) || (t && t[2]) || c.anchor || null;
  }

  // Shows a prompt unless it was already shown in this page view. Returns
  // true when shown. opener: the element focus returns to (default: the
  // focused element).
  function show(p, opener) {
    if (!p || !p.id || !p.content) return false;
    var key = p.campaign ? 'c:' + p.campaign : 'i:' + p.id;
    if (!cfg || !doc.body || shown[key] || shown['i:' + p.id]) return false;
    shown[key] = shown['i:' + p.id] = true;
    style();
    var a = p.content.type === 'lock_badge' && anchorOf(p.content);
    if (a) {
      a._headroomPrompt = p;
      var d = decision(featureOf(p));
      badge(a, featureOf(p), d && d.allowed === false ? upgradeName(d) : (p.content.cta && p.content.cta.plan) || 'an upgrade');
    } else if (p.content.type === 'lock_badge' || !render(p, opener || doc.activeElement, false)) {
      delete shown[key]; // not shown (no anchor, unknown type): may be shown later
      delete shown['i:' + p.id];
      return false;
    }
    postEvent(p, 'impression');
    emit('prompt:shown', p);
    return true;
  }

  // Builds and mounts the prompt's DOM. fromBadge: a lock_badge prompt opened
  // as a tooltip (its impression was already counted).
  function render(p, opener, fromBadge) {
    var c = p.content;
    if (open.some(function (o) { return o.prompt === p; })) return false;
    var type = fromBadge ? 'tooltip' : c.type;
    var n = ++uid;
    var tid = 'headroom-t' + n;
    var box = el(type === 'checklist' ? 'li' : 'div', { class: 'headroom-p', 'data-headroom-prompt': p.id, 'data-headroom-type': type });
    var title = el('h2', { id: tid }, c.title || '');
    var body = el('p', { id: tid + 'b' }, c.body || '');
    var msg = el('p', { class: 'headroom-msg', role: 'status', 'aria-live': 'polite' });
    var x = el('button', { type: 'button', class: 'headroom-x', 'aria-label': 'Close' }, '\u00d7');
    var cta = c.cta && c.cta.label ? el('button', { type: 'button', class: 'headroom-cta' }, c.cta.label) : null;
    box.appendChild(title);
    box.appendChild(body);
    if (cta) box.appendChild(cta);
    box.appendChild(msg);
    box.appendChild(x);

    var mount = box, entry = { prompt: p, el: box, type: type };
    var restore = opener && opener !== doc.body && opener.focus ? opener : null;
    function close(how) {
      if (!mount.isConnected) return;
      mount.remove();
      doc.removeEventListener('keydown', onKey, true);
      root.removeEventListener('resize', place);
      open = open.filter(function (o) { return o !== entry; });
      if (how === 'dismiss') {
        postEvent(p, 'dismiss');
        emit('prompt:dismissed', p);
      }
      if (restore && restore.isConnected && (type === 'modal' || box.contains(doc.activeElement) || doc.activeElement === doc.body))
        restore.focus();
    }
    entry.close = close;

    // Keys go to the newest modal or tooltip only.
    function onKey(e) {
      var top = open.filter(function (o) { return o.type === 'modal' || o.type === 'tooltip'; }).pop();
      if (top !== entry) return;
      if (e.key === 'Escape') {
        e.preventDefault();
        e.stopPropagation();
        close('dismiss');
      } else if (e.key === 'Tab' && type === 'modal') {
        var f = box.querySelectorAll(FOCUSABLE);
        var first = f[0], last = f[f.length - 1];
        if (!box.contains(doc.activeElement)) { e.preventDefault(); first.focus(); }
        else if (e.shiftKey && doc.activeElement === first) { e.preventDefault(); last.focus(); }
        else if (!e.shiftKey && doc.activeElement === last) { e.preventDefault(); first.focus(); }
      }
    }

    function place() {
      var a = anchorOf(c);
      if (!a) {
        box.style.position = 'fixed';
        box.style.right = '16px';
        box.style.bottom = '16px';
        return;
      }
      var r = a.getBoundingClientRect();
      var w = box.offsetWidth || 280;
      var left = Math.max(8, Math.min(r.left + root.scrollX, root.scrollX + doc.documentElement.clientWidth - w - 8));
      box.style.top = r.bottom + root.scrollY + 8 + 'px';
      box.style.left = left + 'px';
    }

    x.addEventListener('click', function () { close('dismiss'); });
    if (cta) cta.addEventListener('click', function () { act(p, entry, cta, msg); });

    if (type === 'modal') {
      box.classList.add('headroom-modal');
      box.setAttribute('role', 'dialog');
      box.setAttribute('aria-modal', 'true');
      box.setAttribute('aria-labelledby', tid);
      box.setAttribute('aria-describedby', tid + 'b');
      mount = el('div', { class: 'headroom-shade' });
      mount.appendChild(box);
      mount.addEventListener('mousedown', function (e) { if (e.target === mount) e.preventDefault(); });
      doc.body.appendChild(mount);
      (cta || x).focus();
    } else if (type === 'tooltip') {
      box.classList.add('headroom-tip');
      box.setAttribute('role', 'dialog');
      box.setAttribute('aria-labelledby', tid);
      box.setAttribute('aria-describedby', tid + 'b');
      doc.body.appendChild(box);
      place();
      root.addEventListener('resize', place);
      var a = anchorOf(c);
      // opened by the user on its anchor: bring focus along for keyboard users
      if (a && restore && (a === restore || a.contains(restore))) (cta || x).focus();
    } else if (type === 'banner') {
      box.classList.add('headroom-banner');
      box.setAttribute('role', 'region');
      box.setAttribute('aria-labelledby', tid);
      doc.body.appendChild(box);
    } else if (type === 'checklist') {
      box.classList.add('headroom-item');
      box.setAttribute('aria-labelledby', tid);
      var host = doc.querySelector('[data-headroom-checklist]');
      var list = host && host.querySelector('.headroom-checklist');
      if (host && !list) list = host.appendChild(el('ul', { class: 'headroom-checklist' }));
      if (!list) list = doc.querySelector('.headroom-list');
      if (!list) {
        list = doc.body.appendChild(el('ul', { class: 'headroom-list headroom-p', role: 'region', 'aria-label': 'Suggestions' }));
      }
      list.appendChild(box);
      mount = box;
    } else {
      return false; // an unknown type from a newer server: not shown
    }
    if (type === 'modal' || type === 'tooltip') doc.addEventListener('keydown', onKey, true);
    open.push(entry);
    return true;
  }

  function safeUrl(u) {
    try {
      var url = new URL(u, root.location.href);
      return /^https?:$/.test(url.protocol) ? url.href : null;
    } catch (e) { return null; }
  }

  // The CTA: report the click, then do what the campaign says.
  function act(p, entry, btn, msg) {
    var cta = p.content.cta || {};
    var action = cta.action || 'url';
    btn.disabled = true;
    msg.textContent = '';
    emit('prompt:cta', { prompt: p, action: action, cta: cta });
    var clicked = postEvent(p, 'click');
    if (action === 'start_trial') {
      var f = featureOf(p);
      return clicked.then(function () {
        if (!f) throw fail('invalid_request', 'this prompt names no feature to try');
        return api('POST', '/v1/accounts/' + encodeURIComponent(cfg.account) + '/trials/' + encodeURIComponent(f));
      }).then(function (trial) {
        postEvent(p, 'trial_started');
        entry.close('cta');
        emit('trial:started', { feature: f, trial: trial, prompt: p });
        return refresh();
      }).catch(function (e) {
        btn.disabled = false;
        msg.textContent = e.message;
        report(e);
      });
    }
    var url = cta.url && safeUrl(cta.url);
    return clicked.then(function () {
      entry.close('cta');
      if (url) root.location.assign(url);
    });
  }

  root.headroom = {
    version: '1.0.0',
    init: init,
    check: function (feature, qty) { return check(feature, qty); },
    track: track,
    show: function (p) { return show(p); },
    refresh: refresh,
    on: on,
    decision: decision,
    // test and debugging aid: the prompts on screen
    get open() { return open.map(function (o) { return o.prompt; }); }
  };
})(window);
