// dingdesk workbench: live updates (SSE), the input box, drafts, alerts and
// 免登. No build step: plain browser JavaScript next to htmx.
(function () {
  "use strict";
  var body = document.body;
  var desk = document.querySelector(".desk");
  var sel = desk ? desk.dataset.sel : "";
  var csrf = body.dataset.csrf || "";

  function trigger(name) { if (window.htmx) htmx.trigger(body, name); }

  // ---- live events: one EventSource per browser -------------------------
  // The tab holding the Web Lock "dingdesk-events" keeps the only stream
  // and relays events to the other tabs (HTTP/1.1 allows ~6 connections per
  // host); it alone plays sounds, so a sound plays once.
  var channel = "BroadcastChannel" in window ? new BroadcastChannel("dingdesk-events") : null;
  var leader = false;
  var refreshTimer = null;

  function handle(type, data) {
    switch (type) {
      case "hello": case "resync":
        trigger("dd:list"); trigger("dd:presence");
        if (sel) { trigger("dd:msg"); trigger("dd:session"); }
        break;
      case "message":
        trigger("dd:list");
        if (data === sel) { trigger("dd:msg"); }
        break;
      case "session":
        trigger("dd:list");
        if (data === sel) { trigger("dd:msg"); trigger("dd:session"); }
        break;
      case "queue": trigger("dd:list"); break;
      case "presence": trigger("dd:presence"); break;
    }
  }

  function connect() {
    if (!body.dataset.staff || !document.getElementById("status")) return;
    var conn = document.getElementById("conn");
    var last = desk ? desk.dataset.lastEvent : "";
    var es = new EventSource("/desk/events" + (last ? "?last=" + encodeURIComponent(last) : ""));
    ["hello", "resync", "message", "session", "queue", "presence"].forEach(function (t) {
      es.addEventListener(t, function (ev) {
        if (conn) conn.hidden = true;
        handle(t, ev.data);
        if (channel) channel.postMessage({ type: t, data: ev.data });
      });
    });
    es.onerror = function () { if (conn) conn.hidden = false; };
    window.ddEvents = es; // for tests and debugging
  }

  if (channel) channel.onmessage = function (m) { if (!leader) handle(m.data.type, m.data.data); };
  if (navigator.locks && channel) {
    navigator.locks.request("dingdesk-events", function () {
      leader = true; connect();
      return new Promise(function () {}); // held until the tab closes
    });
  } else { leader = true; connect(); }

  // ---- alerts: sound, title count, desktop notification -----------------
  var known = null; // ids of my sessions at the last list refresh
  var lastUnread = 0;
  var baseTitle = document.title;
  var audio = null;
  function setting(k, def) { var v = localStorage.getItem("dd." + k); return v === null ? def : v === "1"; }
  function beep(freq, times) {
    if (!leader || !setting("sound", true)) return;
    if (!document.hidden && !setting("focused", false)) return;
    try {
      audio = audio || new (window.AudioContext || window.webkitAudioContext)();
      for (var i = 0; i < times; i++) {
        var o = audio.createOscillator(), g = audio.createGain();
        o.frequency.value = freq; o.connect(g); g.connect(audio.destination);
        var t = audio.currentTime + i * 0.25;
        g.gain.setValueAtTime(0.2, t); g.gain.exponentialRampToValueAtTime(0.001, t + 0.2);
        o.start(t); o.stop(t + 0.2);
      }
    } catch (e) { /* audio blocked until the first click */ }
    window.ddAlerts = (window.ddAlerts || 0) + 1;
  }
  function notify(text) {
    if (!leader || !("Notification" in window) || Notification.permission !== "granted" || !document.hidden) return;
    try { new Notification("客服工作台", { body: text, tag: "dingdesk" }); } catch (e) {}
  }
  function onList(el) {
    var inner = el.querySelector(".list-inner");
    if (!inner) return;
    var ids = inner.dataset.ids.trim().split(/\s+/).filter(Boolean);
    var unread = parseInt(inner.dataset.unread || "0", 10);
    if (known) {
      var fresh = ids.filter(function (id) { return known.indexOf(id) < 0; });
      if (fresh.length) { beep(880, 2); notify("新会话接入"); }
      else if (unread > lastUnread) { beep(660, 1); notify("新消息"); }
    }
    known = ids; lastUnread = unread;
    document.title = (unread ? "(" + unread + ") " : "") + baseTitle;
  }
  // Chatwoot-style reminder while something stays unread.
  setInterval(function () { if (lastUnread > 0 && document.hidden) beep(660, 1); }, 30000);

  var nb = document.getElementById("notify-btn");
  if (nb && "Notification" in window && Notification.permission === "default") {
    nb.hidden = false;
    nb.onclick = function () { Notification.requestPermission(); nb.hidden = true; };
  }
  document.addEventListener("click", function () {
    if (audio && audio.state === "suspended") audio.resume();
  }, { once: true });

  // ---- settings checkboxes -----------------------------------------------
  [["alert-focused", "focused", false], ["alert-sound", "sound", true]].forEach(function (s) {
    var box = document.getElementById(s[0]);
    if (!box) return;
    box.checked = setting(s[1], s[2]);
    box.onchange = function () { localStorage.setItem("dd." + s[1], box.checked ? "1" : "0"); };
  });

  // ---- input box: Enter sends, Shift+Enter new line, draft per session ---
  function textarea() { return document.getElementById("reply-text"); }
  function draftKey(t) { return "dd.draft." + body.dataset.staff + "." + t.dataset.session; }
  function initInput() {
    var t = textarea();
    if (!t || t.dataset.ready) return;
    t.dataset.ready = "1";
    t.value = localStorage.getItem(draftKey(t)) || "";
    t.addEventListener("input", function () {
      if (t.value) localStorage.setItem(draftKey(t), t.value); else localStorage.removeItem(draftKey(t));
    });
    t.addEventListener("keydown", function (e) {
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing && e.keyCode !== 229) {
        e.preventDefault();
        if (t.value.trim()) htmx.trigger(document.getElementById("reply-form"), "submit");
      }
    });
    t.focus();
  }
  body.addEventListener("dd:sent", function () {
    var t = textarea();
    if (t) { localStorage.removeItem(draftKey(t)); t.value = ""; t.focus(); }
  });

  // 搜索 / 推荐知识 / 常用语: a click puts the text into the input box.
  document.addEventListener("click", function (e) {
    var b = e.target.closest && e.target.closest("button.use");
    if (!b) return;
    var t = textarea();
    if (!t) { flash("请先选择一个进行中的会话"); return; }
    var s = t.selectionStart, en = t.selectionEnd;
    if (t.value && !(s === 0 && en === t.value.length)) {
      t.value = t.value.slice(0, s) + b.dataset.text + t.value.slice(en);
    } else { t.value = b.dataset.text; }
    t.dispatchEvent(new Event("input"));
    t.focus();
  });

  function flash(text) {
    var f = document.getElementById("flash");
    if (f) { f.textContent = text; setTimeout(function () { f.textContent = ""; }, 5000); }
  }

  // ---- after each swap ---------------------------------------------------
  body.addEventListener("htmx:afterSwap", function (e) {
    var el = e.detail.target;
    if (el.id === "list") onList(el);
    if (el.id === "transcript") {
      el.scrollTop = el.scrollHeight;
      var lines = el.querySelector(".lines");
      var newest = lines && lines.dataset.newest;
      var chat = document.querySelector(".chat-inner");
      if (newest && newest !== "0" && chat && chat.dataset.open === "true") {
        var f = new FormData(); f.append("last", newest);
        fetch("/desk/s/" + chat.dataset.session + "/read", { method: "POST", body: f, headers: { "X-CSRF-Token": csrf } })
          .then(function () { trigger("dd:list"); });
      }
    }
    initInput();
  });
  body.addEventListener("htmx:responseError", function (e) {
    if (e.detail.target && e.detail.target.id !== "flash" && !e.detail.xhr.getResponseHeader("HX-Retarget")) {
      flash("操作失败（" + e.detail.xhr.status + "），请重试。");
    }
  });
  document.addEventListener("DOMContentLoaded", initInput);
  initInput();

  // Keyboard: Alt+↑/↓ moves between sessions, Escape closes a dialog.
  document.addEventListener("keydown", function (e) {
    if (e.key === "Escape") { var d = document.getElementById("dialog"); if (d) d.innerHTML = ""; }
    if (e.altKey && (e.key === "ArrowUp" || e.key === "ArrowDown")) {
      var items = Array.prototype.slice.call(document.querySelectorAll(".sessions li.session a"));
      var i = items.findIndex(function (a) { return a.parentNode.classList.contains("sel"); });
      var n = items[i + (e.key === "ArrowDown" ? 1 : -1)];
      if (n) { e.preventDefault(); location.href = n.href; }
    }
  });

  // ---- 免登: inside the DingTalk client, log in without a click ----------
  var login = document.getElementById("login");
  if (login && /DingTalk/i.test(navigator.userAgent)) {
    var run = function () {
      if (!window.dd) return;
      var st = document.getElementById("jsapi-status"); if (st) st.hidden = false;
      var ask = dd.runtime && dd.runtime.permission && dd.runtime.permission.requestAuthCode
        ? function (o) { return dd.runtime.permission.requestAuthCode(o); }
        : function (o) { return dd.requestAuthCode(o); };
      var p = ask({ corpId: login.dataset.corp, clientId: login.dataset.client });
      var done = function (r) {
        var f = document.getElementById("jsapi-form");
        f.elements.code.value = r.code || r.authCode; f.submit();
      };
      if (p && p.then) p.then(done, function () { if (st) st.textContent = "免登失败，请使用钉钉登录"; });
      else ask({ corpId: login.dataset.corp, onSuccess: done });
    };
    if (window.dd) run();
    else {
      var s = document.createElement("script");
      s.src = "https://g.alicdn.com/dingding/dingtalk-jsapi/3.0.25/dingtalk.open.js";
      s.onload = run; document.head.appendChild(s);
    }
  }
  // A login link page posts itself (a GET never uses the link up).
  var lf = document.getElementById("link-form");
  if (lf) lf.submit();
})();
