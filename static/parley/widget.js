/*
 * Parley web chat widget: a chat button and panel for any page.
 *
 *   <script src="https://parley.example.com/widget.js" data-channel="CHANNEL-KEY" async></script>
 *
 * Optional attributes: data-title (panel title), data-open="true" (open at load),
 * data-color (accent colour, CSS value).
 *
 * Its texts are English here; /widget.js fills TEXTS with the visitor's language (the browser's
 * Accept-Language), from the project catalogue (apps/channels/platforms/web/texts.py).
 *
 * No dependencies. Everything is drawn inside a shadow root so the page's styles do not leak in.
 * Model output is rendered from Markdown into DOM nodes built with createElement/textContent only:
 * no HTML from the server is ever parsed, links must be http(s)/mailto, images become links.
 * The conversation is kept across page loads (a signed visitor token in localStorage, and the
 * server's history on every connect); dropped connections reconnect with backoff.
 */
(function () {
  "use strict";

  var TEXTS = {} /*PARLEY_TEXTS*/;
  function t(text) {
    return TEXTS[text] || text;
  }

  var script = document.currentScript;
  if (!script) {
    var candidates = document.querySelectorAll("script[data-channel]");
    script = candidates[candidates.length - 1];
  }
  if (!script) return;
  var KEY = script.getAttribute("data-channel") || "";
  window.ParleyChat = window.ParleyChat || {};
  if (!KEY || window.ParleyChat[KEY]) return;

  var BASE = new URL(script.src || "/", location.href).origin;
  var WS_BASE = BASE.replace(/^http/, "ws");
  var TITLE = script.getAttribute("data-title") || t("Chat");
  var COLOR = script.getAttribute("data-color") || "#2563eb";
  var STORE_KEY = "parley.webchat." + KEY;
  var PING_EVERY = 25000;
  var PONG_WITHIN = 10000;
  var RESEND_AFTER = 5000;

  // ---------------------------------------------------------------- storage
  var memoryStore = {};
  function loadState() {
    try {
      return JSON.parse(localStorage.getItem(STORE_KEY) || "{}") || {};
    } catch (e) {
      return memoryStore;
    }
  }
  function saveState() {
    try {
      localStorage.setItem(STORE_KEY, JSON.stringify(state));
    } catch (e) {
      memoryStore = state;
    }
  }
  var state = loadState();
  state.outbox = Array.isArray(state.outbox) ? state.outbox : [];

  function sessionFlag(name, value) {
    try {
      if (value === undefined) return sessionStorage.getItem(STORE_KEY + "." + name) === "1";
      sessionStorage.setItem(STORE_KEY + "." + name, value ? "1" : "0");
    } catch (e) {
      return false;
    }
  }

  function newId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    var bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.prototype.map
      .call(bytes, function (b) {
        return (b + 256).toString(16).slice(1);
      })
      .join("");
  }

  // ---------------------------------------------------------------- safe Markdown
  // Written by hand so the widget stays one small file with no dependencies; it only ever creates
  // elements from a fixed list and sets text with textContent.
  function el(tag, cls) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    return node;
  }

  // Icons are drawn as SVG paths, not emoji, so they look the same where no emoji font is installed.
  var ICON_CHAT = "M3 5a2 2 0 0 1 2-2h14a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4H5a2 2 0 0 1-2-2z";
  var ICON_THUMB = "M2 10h4v11H2zM8 10l4-7c1.5 0 2.5 1 2.2 2.6L13.5 9H20a2 2 0 0 1 2 2.3l-1.4 8A2 2 0 0 1 18.6 21H8z";
  function svgIcon(d, size, flip) {
    var ns = "http://www.w3.org/2000/svg";
    var svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("width", size);
    svg.setAttribute("height", size);
    svg.setAttribute("aria-hidden", "true");
    var path = document.createElementNS(ns, "path");
    path.setAttribute("d", d);
    path.setAttribute("fill", "currentColor");
    if (flip) path.setAttribute("transform", "rotate(180 12 12)");
    svg.appendChild(path);
    return svg;
  }

  function safeUrl(raw) {
    try {
      var url = new URL(raw);
      if (url.protocol === "http:" || url.protocol === "https:" || url.protocol === "mailto:") return url.href;
    } catch (e) {
      /* relative or malformed: not a link */
    }
    return null;
  }

  var ESCAPABLE = "\\`*_{}[]()#+-.!~|>";
  var LINK_RE = /^!?\[([^\]\n]{0,500})\]\(\s*<?([^\s()<>]{1,2000})>?(?:\s+"[^"\n]*")?\s*\)/;
  var AUTOLINK_RE = /^https?:\/\/[^\s<>"'`]*[^\s<>"'`.,;:!?)\]]/;

  function isSpace(ch) {
    return !ch || /\s/.test(ch);
  }
  function isWord(ch) {
    return !!ch && /[A-Za-z0-9]/.test(ch);
  }

  // The closing run of an emphasis: not after a space, and for "_" not inside a word (snake_case).
  function findCloser(text, delim, from) {
    var at = text.indexOf(delim, from);
    while (at > 0) {
      var after = text.charAt(at + delim.length);
      var ok = !isSpace(text.charAt(at - 1)) && !(delim.charAt(0) === "_" && isWord(after));
      if (delim.length === 1 && after === delim) ok = false; // part of a longer run
      if (ok) return at;
      at = text.indexOf(delim, at + delim.length);
    }
    return -1;
  }

  function renderInline(text, into, depth) {
    var buf = "";
    function flush() {
      if (buf) into.appendChild(document.createTextNode(buf));
      buf = "";
    }
    function wrap(tag, inner) {
      flush();
      var node = el(tag);
      renderInline(inner, node, depth + 1);
      into.appendChild(node);
    }
    var i = 0;
    while (i < text.length) {
      var c = text.charAt(i);
      var next = text.charAt(i + 1);
      if (c === "\\" && next && ESCAPABLE.indexOf(next) >= 0) {
        buf += next;
        i += 2;
        continue;
      }
      if (c === "\n") {
        flush();
        into.appendChild(el("br"));
        i++;
        continue;
      }
      if (c === "`") {
        var n = 1;
        while (text.charAt(i + n) === "`") n++;
        var fence = text.substr(i, n);
        var close = text.indexOf(fence, i + n);
        if (close > 0) {
          flush();
          var code = el("code");
          code.textContent = text.slice(i + n, close);
          into.appendChild(code);
          i = close + n;
        } else {
          buf += fence;
          i += n;
        }
        continue;
      }
      if (depth < 6) {
        if ((c === "*" || c === "_" || c === "~") && next === c && !isSpace(text.charAt(i + 2))) {
          var end2 = findCloser(text, c + c, i + 2);
          if (end2 > i + 2 && !(c === "_" && isWord(text.charAt(i - 1)))) {
            wrap(c === "~" ? "del" : "strong", text.slice(i + 2, end2));
            i = end2 + 2;
            continue;
          }
        }
        if ((c === "*" || c === "_") && next !== c && !isSpace(next)) {
          var end1 = findCloser(text, c, i + 1);
          if (end1 > i + 1 && !(c === "_" && isWord(text.charAt(i - 1)))) {
            wrap("em", text.slice(i + 1, end1));
            i = end1 + 1;
            continue;
          }
        }
        if (c === "[" || (c === "!" && next === "[")) {
          var m = LINK_RE.exec(text.slice(i, i + 2600));
          if (m) {
            flush();
            var href = safeUrl(m[2]);
            var label = m[1] || m[2];
            if (href) {
              var a = el("a");
              a.href = href;
              a.target = "_blank";
              a.rel = "noopener noreferrer nofollow";
              renderInline(label, a, depth + 1);
              into.appendChild(a);
            } else {
              renderInline(label, into, depth + 1);
            }
            i += m[0].length;
            continue;
          }
        }
      }
      if (c === "h" && !isWord(text.charAt(i - 1))) {
        var auto = AUTOLINK_RE.exec(text.slice(i, i + 2100));
        if (auto && safeUrl(auto[0])) {
          flush();
          var link = el("a");
          link.href = safeUrl(auto[0]);
          link.target = "_blank";
          link.rel = "noopener noreferrer nofollow";
          link.textContent = auto[0];
          into.appendChild(link);
          i += auto[0].length;
          continue;
        }
      }
      buf += c;
      i++;
    }
    flush();
  }

  var FENCE_RE = /^\s{0,3}(```+|~~~+)\s*([\w+#.-]*)\s*$/;
  var HEADING_RE = /^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$/;
  var HR_RE = /^\s{0,3}([-*_])(\s*\1){2,}\s*$/;
  var QUOTE_RE = /^\s{0,3}>\s?(.*)$/;
  var ITEM_RE = /^(\s*)([-*+]|\d{1,9}[.)])\s+(.*)$/;
  var TABLE_SEP_RE = /^\s*\|?\s*:?-{1,}:?\s*(\|\s*:?-{1,}:?\s*)*\|?\s*$/;

  function isBlockStart(line, nextLine) {
    return (
      FENCE_RE.test(line) ||
      HEADING_RE.test(line) ||
      HR_RE.test(line) ||
      QUOTE_RE.test(line) ||
      ITEM_RE.test(line) ||
      (line.indexOf("|") >= 0 && nextLine !== undefined && TABLE_SEP_RE.test(nextLine) && nextLine.indexOf("-") >= 0)
    );
  }

  function splitRow(line) {
    var row = line.trim();
    if (row.charAt(0) === "|") row = row.slice(1);
    if (row.charAt(row.length - 1) === "|" && row.charAt(row.length - 2) !== "\\") row = row.slice(0, -1);
    var cells = [];
    var cell = "";
    for (var i = 0; i < row.length; i++) {
      var ch = row.charAt(i);
      if (ch === "\\" && row.charAt(i + 1) === "|") {
        cell += "\\|";
        i++;
      } else if (ch === "|") {
        cells.push(cell.trim());
        cell = "";
      } else {
        cell += ch;
      }
    }
    cells.push(cell.trim());
    return cells;
  }

  function renderBlocks(lines, into, depth) {
    var i = 0;
    while (i < lines.length) {
      var line = lines[i];
      var m;
      if (/^\s*$/.test(line)) {
        i++;
        continue;
      }
      if ((m = FENCE_RE.exec(line))) {
        var fence = m[1];
        var body = [];
        i++;
        while (i < lines.length && lines[i].trim().indexOf(fence) !== 0) body.push(lines[i++]);
        i++;
        var pre = el("pre");
        var code = el("code");
        code.textContent = body.join("\n");
        pre.appendChild(code);
        into.appendChild(pre);
        continue;
      }
      if ((m = HEADING_RE.exec(line))) {
        var h = el("h" + Math.min(6, m[1].length + 2));
        renderInline(m[2], h, 0);
        into.appendChild(h);
        i++;
        continue;
      }
      if (HR_RE.test(line)) {
        into.appendChild(el("hr"));
        i++;
        continue;
      }
      if (QUOTE_RE.test(line) && depth < 4) {
        var quoted = [];
        while (i < lines.length && (m = QUOTE_RE.exec(lines[i]))) {
          quoted.push(m[1]);
          i++;
        }
        var bq = el("blockquote");
        renderBlocks(quoted, bq, depth + 1);
        into.appendChild(bq);
        continue;
      }
      if ((m = ITEM_RE.exec(line))) {
        var ordered = /\d/.test(m[2]);
        var list = el(ordered ? "ol" : "ul");
        if (ordered && parseInt(m[2], 10) !== 1) list.start = parseInt(m[2], 10);
        var item = null;
        var itemLines = [];
        var flushItem = function () {
          if (item) {
            renderBlocks(itemLines, item, depth + 1);
            list.appendChild(item);
          }
        };
        while (i < lines.length) {
          var cur = lines[i];
          var im = ITEM_RE.exec(cur);
          if (im && /\d/.test(im[2]) === ordered) {
            flushItem();
            item = el("li");
            itemLines = [im[3]];
            i++;
          } else if (!/^\s*$/.test(cur) && /^\s+/.test(cur) && !im) {
            itemLines.push(cur.trim());
            i++;
          } else if (im) {
            // a nested or differently marked item: kept inside the current item
            itemLines.push(cur.trim());
            i++;
          } else {
            break;
          }
        }
        flushItem();
        into.appendChild(list);
        continue;
      }
      if (line.indexOf("|") >= 0 && i + 1 < lines.length && TABLE_SEP_RE.test(lines[i + 1]) && lines[i + 1].indexOf("-") >= 0) {
        var table = el("table");
        var thead = el("thead");
        var tr = el("tr");
        splitRow(line).forEach(function (cell) {
          var th = el("th");
          renderInline(cell, th, 0);
          tr.appendChild(th);
        });
        thead.appendChild(tr);
        table.appendChild(thead);
        var tbody = el("tbody");
        i += 2;
        while (i < lines.length && lines[i].indexOf("|") >= 0 && !/^\s*$/.test(lines[i])) {
          var row = el("tr");
          splitRow(lines[i]).forEach(function (cell) {
            var td = el("td");
            renderInline(cell, td, 0);
            row.appendChild(td);
          });
          tbody.appendChild(row);
          i++;
        }
        table.appendChild(tbody);
        var wrapper = el("div", "table");
        wrapper.appendChild(table);
        into.appendChild(wrapper);
        continue;
      }
      var para = [line];
      i++;
      while (i < lines.length && !/^\s*$/.test(lines[i]) && !isBlockStart(lines[i], lines[i + 1])) para.push(lines[i++]);
      var p = el("p");
      renderInline(para.join("\n"), p, 0);
      into.appendChild(p);
    }
  }

  function renderMarkdown(text, into) {
    into.textContent = "";
    if (text.length > 100000) {
      into.textContent = text; // far beyond any chat answer: shown as plain text
      return;
    }
    renderBlocks(text.replace(/\r\n?/g, "\n").split("\n"), into, 0);
  }

  // ---------------------------------------------------------------- UI
  var CSS =
    ":host{all:initial}" +
    "*{box-sizing:border-box}" +
    ".launcher{position:fixed;right:20px;bottom:20px;width:56px;height:56px;border-radius:50%;border:0;cursor:pointer;" +
    "background:var(--accent);color:#fff;box-shadow:0 4px 14px rgba(0,0,0,.25);z-index:2147483000;display:flex;align-items:center;justify-content:center}" +
    ".launcher .dot{position:absolute;top:6px;right:6px;width:12px;height:12px;border-radius:50%;background:#ef4444;display:none}" +
    ".launcher.unread .dot{display:block}" +
    ".panel{position:fixed;right:20px;bottom:88px;width:370px;height:560px;max-height:calc(100vh - 110px);display:none;" +
    "flex-direction:column;background:#fff;color:#1f2937;border-radius:14px;overflow:hidden;z-index:2147483000;" +
    "box-shadow:0 10px 40px rgba(0,0,0,.25);font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif}" +
    ".panel.open{display:flex}" +
    "@media (max-width:480px){.panel{right:0;bottom:0;width:100vw;height:100vh;max-height:100vh;border-radius:0}}" +
    "header{display:flex;align-items:center;gap:8px;padding:12px 14px;background:var(--accent);color:#fff}" +
    "header .title{flex:1;font-weight:600;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}" +
    "header button{background:transparent;border:0;color:#fff;cursor:pointer;font-size:18px;padding:2px 6px;border-radius:6px}" +
    "header button:hover{background:rgba(255,255,255,.15)}" +
    ".status{font-size:12px;padding:4px 14px;background:#fef3c7;color:#92400e;display:none}" +
    ".status.show{display:block}" +
    ".log{flex:1;overflow-y:auto;padding:14px;display:flex;flex-direction:column;gap:10px;background:#f9fafb}" +
    ".msg{max-width:85%;padding:8px 12px;border-radius:12px;word-wrap:break-word;overflow-wrap:anywhere}" +
    ".msg.user{align-self:flex-end;background:var(--accent);color:#fff;white-space:pre-wrap;border-bottom-right-radius:4px}" +
    ".msg.user.pending{opacity:.65}" +
    ".msg.user.failed{background:#b91c1c}" +
    ".msg .why{display:block;font-size:11px;margin-top:4px;opacity:.9}" +
    ".msg.bot{align-self:flex-start;background:#fff;border:1px solid #e5e7eb;border-bottom-left-radius:4px}" +
    ".msg.bot.streaming .body::after{content:'\\258D';animation:blink 1s steps(1) infinite;color:#9ca3af}" +
    ".msg.bot.interrupted{opacity:.6}" +
    "@keyframes blink{50%{opacity:0}}" +
    ".body>:first-child{margin-top:0}.body>:last-child{margin-bottom:0}" +
    ".body p,.body ul,.body ol,.body pre,.body blockquote,.body .table{margin:0 0 8px}" +
    ".body ul,.body ol{padding-left:20px}" +
    ".body h3,.body h4,.body h5,.body h6{margin:8px 0 4px;font-size:1em}" +
    ".body code{font:12px/1.4 ui-monospace,Menlo,Consolas,monospace;background:#f3f4f6;padding:1px 4px;border-radius:4px}" +
    ".body pre{background:#111827;color:#f9fafb;padding:8px 10px;border-radius:8px;overflow-x:auto}" +
    ".body pre code{background:transparent;color:inherit;padding:0}" +
    ".body blockquote{border-left:3px solid #d1d5db;padding-left:8px;color:#4b5563}" +
    ".body a{color:var(--accent)}" +
    ".body .table{overflow-x:auto}.body table{border-collapse:collapse}" +
    ".body th,.body td{border:1px solid #e5e7eb;padding:3px 6px;text-align:left}" +
    ".body hr{border:0;border-top:1px solid #e5e7eb}" +
    ".rate{display:flex;gap:4px;margin-top:6px}" +
    ".rate button{border:1px solid #e5e7eb;background:#fff;color:#6b7280;border-radius:6px;cursor:pointer;padding:3px 6px;line-height:0}" +
    ".rate .rate-page{align-self:center;font-size:12px;color:#6b7280;margin-left:4px}" +
    ".rate button[aria-pressed=true]{color:var(--accent);border-color:var(--accent);background:#eff6ff}" +
    ".typing{align-self:flex-start;display:none;gap:4px;padding:10px 12px;background:#fff;border:1px solid #e5e7eb;border-radius:12px}" +
    ".typing.show{display:flex}" +
    ".typing em.typing-label{font-size:12px;color:#6b7280;margin-left:6px;align-self:center}" +
    ".typing span{width:6px;height:6px;border-radius:50%;background:#9ca3af;animation:bounce 1.2s infinite}" +
    ".typing span:nth-child(2){animation-delay:.2s}.typing span:nth-child(3){animation-delay:.4s}" +
    "@keyframes bounce{0%,60%,100%{transform:translateY(0)}30%{transform:translateY(-4px)}}" +
    "form{display:flex;gap:8px;padding:10px;border-top:1px solid #e5e7eb;background:#fff}" +
    "textarea{flex:1;resize:none;border:1px solid #d1d5db;border-radius:10px;padding:8px 10px;font:inherit;max-height:120px;color:#111827;background:#fff}" +
    "textarea:focus{outline:2px solid var(--accent);outline-offset:-1px}" +
    "form button{border:0;border-radius:10px;background:var(--accent);color:#fff;padding:0 14px;cursor:pointer;font:inherit}" +
    "form button:disabled{opacity:.5;cursor:default}";

  var host = el("div");
  host.setAttribute("data-parley-chat", KEY);
  var root = host.attachShadow({ mode: "open" });
  var style = el("style");
  style.textContent = CSS;
  root.appendChild(style);
  host.style.setProperty("--accent", COLOR);

  var launcher = el("button", "launcher");
  launcher.type = "button";
  launcher.setAttribute("aria-label", t("Open chat"));
  launcher.appendChild(svgIcon(ICON_CHAT, 26));
  launcher.appendChild(el("span", "dot"));

  var panel = el("section", "panel");
  panel.setAttribute("role", "dialog");
  panel.setAttribute("aria-label", TITLE);
  var header = el("header");
  var titleEl = el("span", "title");
  titleEl.textContent = TITLE;
  var newBtn = el("button");
  newBtn.type = "button";
  newBtn.title = t("New conversation");
  newBtn.setAttribute("aria-label", t("New conversation"));
  newBtn.textContent = "\u21BB";
  var closeBtn = el("button");
  closeBtn.type = "button";
  closeBtn.title = t("Close");
  closeBtn.setAttribute("aria-label", t("Close chat"));
  closeBtn.textContent = "\u00D7";
  header.appendChild(titleEl);
  header.appendChild(newBtn);
  header.appendChild(closeBtn);
  var statusEl = el("div", "status");
  statusEl.setAttribute("role", "status");
  var log = el("div", "log");
  log.setAttribute("role", "log");
  log.setAttribute("aria-live", "polite");
  var typing = el("div", "typing");
  typing.setAttribute("aria-label", t("The assistant is typing"));
  typing.appendChild(el("span"));
  typing.appendChild(el("span"));
  typing.appendChild(el("span"));
  var typingLabel = el("em", "typing-label");
  typing.appendChild(typingLabel);
  var form = el("form");
  var input = el("textarea");
  input.rows = 1;
  input.placeholder = t("Type a message…");
  input.setAttribute("aria-label", t("Message"));
  input.maxLength = state.max_chars || 4000;
  var sendBtn = el("button");
  sendBtn.type = "submit";
  sendBtn.textContent = t("Send");
  form.appendChild(input);
  form.appendChild(sendBtn);
  panel.appendChild(header);
  panel.appendChild(statusEl);
  panel.appendChild(log);
  panel.appendChild(form);
  root.appendChild(launcher);
  root.appendChild(panel);

  function mount() {
    document.body.appendChild(host);
  }
  if (document.body) mount();
  else document.addEventListener("DOMContentLoaded", mount);

  var byId = {}; // message id -> bubble
  var streams = {}; // reply key -> streaming bubble
  var statusTimer = null;
  var typingTimer = null;

  function scrollDown() {
    log.scrollTop = log.scrollHeight;
  }

  function setStatus(text, sticky) {
    clearTimeout(statusTimer);
    statusEl.textContent = text || "";
    statusEl.classList.toggle("show", !!text);
    if (text && !sticky) {
      statusTimer = setTimeout(function () {
        setStatus("");
      }, 6000);
    }
  }

  function showTyping(on) {
    clearTimeout(typingTimer);
    typing.classList.toggle("show", !!on);
    if (!on) typingLabel.textContent = "";
    if (on) {
      log.appendChild(typing);
      scrollDown();
      typingTimer = setTimeout(function () {
        showTyping(false);
      }, 60000);
    }
  }

  function append(node) {
    log.insertBefore(node, typing.parentNode === log ? typing : null);
    scrollDown();
  }

  function userBubble(id, text, pending) {
    var node = byId[id];
    if (!node) {
      node = el("div", "msg user");
      node.dataset.id = id;
      node.appendChild(document.createTextNode(text));
      byId[id] = node;
    }
    node.classList.toggle("pending", !!pending);
    append(node);
    return node;
  }

  function failBubble(id, why) {
    var node = byId[id];
    if (!node || !node.classList.contains("user")) return;
    node.classList.remove("pending");
    node.classList.add("failed");
    var note = node.querySelector(".why") || el("span", "why");
    note.textContent = why;
    node.appendChild(note);
  }

  function botBubble() {
    var node = el("div", "msg bot");
    var body = el("div", "body");
    node.appendChild(body);
    node._text = "";
    return node;
  }

  var renderQueued = [];
  function queueRender(node) {
    if (renderQueued.indexOf(node) >= 0) return;
    renderQueued.push(node);
    (window.requestAnimationFrame || setTimeout)(function () {
      var nodes = renderQueued;
      renderQueued = [];
      nodes.forEach(function (n) {
        renderMarkdown(n._text, n.firstChild);
      });
      scrollDown();
    });
  }

  function ratingButtons(node, id, rating) {
    var bar = node.querySelector(".rate");
    if (bar) bar.remove();
    bar = el("div", "rate");
    [
      ["up", false, t("Helpful")],
      ["down", true, t("Not helpful")],
    ].forEach(function (spec) {
      var b = el("button");
      b.type = "button";
      b.dataset.rating = spec[0];
      b.appendChild(svgIcon(ICON_THUMB, 14, spec[1]));
      b.title = spec[2];
      b.setAttribute("aria-label", spec[2]);
      b.setAttribute("aria-pressed", rating === spec[0] ? "true" : "false");
      b.addEventListener("click", function () {
        if (!sendFrame({ type: "feedback", message_id: id, rating: spec[0] })) {
          setStatus(t("You are offline; try again in a moment."));
          return;
        }
        bar.querySelectorAll("button").forEach(function (other) {
          other.setAttribute("aria-pressed", other === b ? "true" : "false");
        });
      });
      bar.appendChild(b);
    });
    node.appendChild(bar);
  }

  // The answer's rating page: stars and a comment, beyond the thumbs.
  function rateLink(node, url) {
    var bar = node.querySelector(".rate");
    if (!bar) return;
    var link = el("a", "rate-page");
    link.href = url;
    link.target = "_blank";
    link.rel = "noopener noreferrer";
    link.textContent = t("Rate and comment");
    bar.appendChild(link);
  }

  function finalBubble(frame, rating) {
    var node = byId[frame.id];
    var key = frame.reply_to || "";
    if (!node && key && streams[key]) node = streams[key];
    if (!node) node = botBubble();
    if (key && streams[key] === node) delete streams[key];
    // Answers to earlier messages still streaming were interrupted or merged into this one.
    Object.keys(streams).forEach(function (k) {
      if (streams[k].compareDocumentPosition(node) & Node.DOCUMENT_POSITION_FOLLOWING || !node.parentNode) {
        streams[k].classList.remove("streaming");
        streams[k].classList.add("interrupted");
        delete streams[k];
      }
    });
    node.classList.remove("streaming");
    node.dataset.id = frame.id;
    node._text = frame.text || "";
    byId[frame.id] = node;
    renderMarkdown(node._text, node.firstChild);
    if (/^parley-\d+$/.test(frame.id)) ratingButtons(node, frame.id, rating);
    if (frame.feedback_url && /^https?:\/\//.test(frame.feedback_url)) rateLink(node, frame.feedback_url);
    if (!node.parentNode) append(node); // a streamed answer stays where it started
    else scrollDown();
    return node;
  }

  function renderHistory(messages) {
    var pendingStreams = streams;
    byId = {};
    streams = {};
    log.textContent = "";
    var answered = {};
    messages.forEach(function (m) {
      if (m.role === "user") userBubble(m.id, m.text, false);
      else {
        finalBubble(m, m.rating);
        if (m.reply_to) answered[m.reply_to] = true;
      }
    });
    if (!messages.length && state.greeting) {
      var hello = botBubble();
      hello._text = state.greeting;
      renderMarkdown(hello._text, hello.firstChild);
      append(hello);
    }
    state.outbox.forEach(function (item) {
      if (!byId[item.id]) userBubble(item.id, item.text, true);
    });
    Object.keys(pendingStreams).forEach(function (k) {
      if (!answered[k]) {
        streams[k] = pendingStreams[k];
        append(streams[k]);
      }
    });
  }

  function onToken(frame) {
    var key = frame.reply_to || frame.reply_ref || "_";
    var node = streams[key];
    if (!node) {
      node = botBubble();
      node.classList.add("streaming");
      streams[key] = node;
      append(node);
    }
    showTyping(false);
    node._text += frame.text || "";
    queueRender(node);
  }

  // ---------------------------------------------------------------- connection
  var ws = null;
  var backoff = 0;
  var authFailures = 0;
  var reconnectTimer = null;
  var pingTimer = null;
  var pongTimer = null;
  var resendTimer = null;
  var needToken = false;
  var started = false;
  var connecting = false;
  var unavailable = false;

  function requestToken(opts) {
    var body = {};
    if (state.token) body.token = state.token;
    if (opts && opts.newConversation) body.new_conversation = true;
    return fetch(BASE + "/api/v1/webchat/" + encodeURIComponent(KEY) + "/token", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
      credentials: "omit",
      cache: "no-store",
    }).then(function (r) {
      if (!r.ok) {
        var err = new Error("token request failed");
        err.status = r.status;
        throw err;
      }
      return r.json().then(function (data) {
        state.token = data.token;
        state.expires_at = data.expires_at;
        state.conversation_id = data.conversation_id;
        state.max_chars = data.max_chars;
        state.greeting = (data.bot && data.bot.greeting) || "";
        input.maxLength = data.max_chars || 4000;
        saveState();
      });
    });
  }

  function sendFrame(frame) {
    if (!ws || ws.readyState !== 1) return false;
    ws.send(JSON.stringify(frame));
    return true;
  }

  function flushOutbox(force) {
    var now = Date.now();
    var sent = 0;
    state.outbox.forEach(function (item) {
      if (sent >= 4) return; // stay well inside the server's per-socket burst
      if (force || !item.sentAt || now - item.sentAt > RESEND_AFTER) {
        if (sendFrame({ type: "message", id: item.id, text: item.text })) {
          item.sentAt = now;
          sent++;
        }
      }
    });
  }

  function stopTimers() {
    clearInterval(pingTimer);
    clearTimeout(pongTimer);
    clearInterval(resendTimer);
  }

  function dropSocket(sock) {
    // Forget the socket first so its late close event is ignored, then reconnect at once.
    if (ws === sock) ws = null;
    stopTimers();
    try {
      sock.close();
    } catch (e) {
      /* already closed */
    }
  }

  function scheduleReconnect(delay) {
    clearTimeout(reconnectTimer);
    if (delay === undefined) {
      delay = Math.min(30000, 500 * Math.pow(2, backoff)) * (0.5 + Math.random() * 0.5);
      backoff = Math.min(backoff + 1, 10);
    }
    reconnectTimer = setTimeout(connect, delay);
  }

  function connect() {
    clearTimeout(reconnectTimer);
    if (connecting || (ws && ws.readyState <= 1)) return;
    connecting = true;
    var fresh = !state.token || needToken || (state.expires_at || 0) * 1000 < Date.now() + 60000;
    var ready = fresh ? requestToken() : Promise.resolve();
    if (!unavailable) setStatus(started ? t("Reconnecting…") : t("Connecting…"), true);
    started = true;
    ready.then(
      function () {
        connecting = false;
        needToken = false;
        unavailable = false;
        open();
      },
      function (err) {
        connecting = false;
        if (err && (err.status === 403 || err.status === 404)) {
          unavailable = true;
          setStatus(t("The chat is not available here."), true);
          scheduleReconnect(60000);
        } else {
          setStatus(t("Offline — reconnecting…"), true);
          scheduleReconnect();
        }
      }
    );
  }

  function open() {
    var sock = new WebSocket(WS_BASE + "/ws/chat/" + encodeURIComponent(KEY) + "/", ["parley.v1", "parley.auth." + state.token]);
    ws = sock;
    sock.onopen = function () {
      if (ws !== sock) return;
      backoff = 0;
      setStatus("");
      pingTimer = setInterval(function () {
        if (!sendFrame({ type: "ping" })) return;
        clearTimeout(pongTimer);
        pongTimer = setTimeout(function () {
          dropSocket(sock);
          connect();
        }, PONG_WITHIN);
      }, PING_EVERY);
      resendTimer = setInterval(flushOutbox, RESEND_AFTER);
    };
    sock.onmessage = function (ev) {
      if (ws !== sock) return;
      clearTimeout(pongTimer);
      var frame;
      try {
        frame = JSON.parse(ev.data);
      } catch (e) {
        return;
      }
      handleFrame(frame);
    };
    sock.onclose = function (ev) {
      if (ws !== sock) return;
      ws = null;
      stopTimers();
      setStatus(t("Offline — reconnecting…"), true);
      if (ev.code === 4401) {
        needToken = true;
        authFailures++;
        scheduleReconnect(authFailures > 1 ? undefined : 100);
      } else if (ev.code === 4429) {
        scheduleReconnect(10000);
      } else {
        scheduleReconnect();
      }
    };
  }

  function handleFrame(f) {
    switch (f.type) {
      case "history":
        authFailures = 0;
        renderHistory(Array.isArray(f.messages) ? f.messages : []);
        flushOutbox(true);
        break;
      case "ack":
        if (f.rating) break;
        state.outbox = state.outbox.filter(function (item) {
          return item.id !== f.id;
        });
        saveState();
        if (byId[f.id]) byId[f.id].classList.remove("pending");
        break;
      case "typing":
        var last = log.lastElementChild === typing ? typing.previousElementSibling : log.lastElementChild;
        if (last && last.classList.contains("user") && !Object.keys(streams).length) showTyping(true);
        break;
      case "status":
        // A passing status while the answer is being made ("Calling Create ticket…").
        typingLabel.textContent = f.text || "";
        showTyping(true);
        break;
      case "token":
        onToken(f);
        break;
      case "message":
        showTyping(false);
        finalBubble(f, null);
        if (!panel.classList.contains("open")) launcher.classList.add("unread");
        break;
      case "error":
        if (f.id && byId[f.id] && byId[f.id].classList.contains("user")) {
          state.outbox = state.outbox.filter(function (item) {
            return item.id !== f.id;
          });
          saveState();
          failBubble(f.id, f.message || t("Not sent."));
        } else if (f.code === "not_found" && f.id && byId[f.id]) {
          var bar = byId[f.id].querySelector(".rate");
          if (bar) bar.remove();
        } else if (f.code !== "unauthorized") {
          setStatus(f.message || t("Something went wrong."));
        }
        break;
      default:
        break; // pong, and frame types added later
    }
  }

  // ---------------------------------------------------------------- interaction
  function setOpen(open) {
    panel.classList.toggle("open", open);
    launcher.setAttribute("aria-label", open ? t("Close chat") : t("Open chat"));
    launcher.setAttribute("aria-expanded", open ? "true" : "false");
    sessionFlag("open", open);
    if (open) {
      launcher.classList.remove("unread");
      if (!started) connect();
      setTimeout(function () {
        input.focus();
      }, 0);
      scrollDown();
    }
  }

  function submit() {
    var text = input.value.trim();
    if (!text) return;
    var id = newId();
    state.outbox.push({ id: id, text: text, sentAt: 0 });
    saveState();
    input.value = "";
    input.style.height = "";
    userBubble(id, text, true);
    if (!ws) connect();
    flushOutbox();
  }

  launcher.addEventListener("click", function () {
    setOpen(!panel.classList.contains("open"));
  });
  closeBtn.addEventListener("click", function () {
    setOpen(false);
  });
  newBtn.addEventListener("click", function () {
    requestToken({ newConversation: true }).then(
      function () {
        state.outbox = [];
        saveState();
        renderHistory([]);
        if (ws) dropSocket(ws);
        connect();
      },
      function () {
        setStatus(t("Could not start a new conversation; try again."));
      }
    );
  });
  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    submit();
  });
  input.addEventListener("keydown", function (ev) {
    if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
      ev.preventDefault();
      submit();
    }
  });
  input.addEventListener("input", function () {
    input.style.height = "";
    input.style.height = Math.min(input.scrollHeight, 120) + "px";
  });
  window.addEventListener("online", function () {
    if (started && !ws) connect();
  });
  document.addEventListener("visibilitychange", function () {
    if (started && !ws && document.visibilityState === "visible") connect();
  });

  window.ParleyChat[KEY] = {
    open: function () {
      setOpen(true);
    },
    close: function () {
      setOpen(false);
    },
  };

  // A returning visitor (or an open panel) connects at once, so answers that arrived while the
  // page was closed show up; a first-time visitor connects when opening the chat.
  if (script.getAttribute("data-open") === "true" || sessionFlag("open")) setOpen(true);
  else if (state.token) connect();
})();
