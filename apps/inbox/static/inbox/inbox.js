// The agents' inbox: the queue and the open conversation, kept live by /ws/inbox/.
// The socket only says "handoff N changed"; this page then reads the queue and the open
// conversation again over HTTP, with the agent's own permissions.
(function () {
  "use strict";
  const root = document.querySelector("[data-testid=inbox]");
  if (!root) return;
  const T = JSON.parse(document.getElementById("inbox-texts").textContent);
  const queueEl = root.querySelector("[data-testid=queue]");
  const emptyEl = root.querySelector("[data-testid=queue-empty]");
  const chat = root.querySelector("[data-testid=chat]");
  const transcriptEl = root.querySelector("[data-testid=transcript]");
  const form = root.querySelector("[data-testid=compose]");
  const textArea = root.querySelector("[data-testid=reply-text]");
  const errorEl = root.querySelector("[data-testid=error]");
  const canned = root.querySelector("[data-testid=canned]");
  const liveEl = root.querySelector("[data-testid=live-state]");
  const base = root.dataset.baseUrl;
  let selected = null;
  let current = null;

  function csrf() {
    const m = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return m ? decodeURIComponent(m[1]) : "";
  }

  async function getJSON(url) {
    const resp = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
    return { ok: resp.ok, body: await resp.json().catch(() => ({})) };
  }

  async function post(action, payload) {
    const resp = await fetch(`${base}${selected}/${action}/`, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf(), Accept: "application/json" },
      body: JSON.stringify(payload || {}),
    });
    const body = await resp.json().catch(() => ({}));
    errorEl.textContent = resp.ok ? "" : body.error || T.failed;
    return { ok: resp.ok, body };
  }

  function minutes(seconds) {
    return seconds < 60 ? T.under_a_minute : T.minutes.replace("%(n)s", Math.floor(seconds / 60));
  }

  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function holderText(h) {
    if (h.state === "waiting") return T.waiting;
    return h.mine ? T.held_by_you : T.held_by.replace("%(name)s", h.agent);
  }

  async function loadQueue() {
    const { ok, body } = await getJSON(root.dataset.queueUrl);
    if (!ok) return;
    queueEl.replaceChildren();
    for (const h of body.handoffs) {
      const item = el("li", { class: "parley-inbox-item", "data-handoff": h.id, "data-state": h.state, tabindex: "0" });
      if (h.id === selected) item.setAttribute("aria-current", "true");
      const top = el("div", { class: "top" });
      top.append(el("strong", {}, h.user_name || "—"));
      top.append(el("span", { class: `parley-badge is-${h.state}` }, holderText(h)));
      item.append(top);
      item.append(el("div", { class: "parley-muted" }, `${h.bot} · ${h.platform} · ${h.language || "?"} · ${minutes(h.waiting_seconds)}`));
      item.append(el("div", { class: "summary", "data-testid": "summary" }, h.summary || "—"));
      item.addEventListener("click", () => open(h.id));
      item.addEventListener("keydown", (e) => { if (e.key === "Enter") open(h.id); });
      queueEl.append(item);
    }
    emptyEl.hidden = body.handoffs.length > 0;
  }

  async function loadChat() {
    if (selected === null) return;
    const { ok, body } = await getJSON(`${base}${selected}.json`);
    if (!ok) { chat.hidden = true; selected = null; return; }
    current = body.handoff;
    chat.hidden = false;
    for (const field of ["user_name", "bot", "platform", "language", "reason", "summary"]) {
      chat.querySelector(`[data-field=${field}]`).textContent = current[field] || "—";
    }
    chat.querySelector("[data-field=holder]").textContent = holderText(current);
    chat.querySelector("[data-action=claim]").hidden = current.mine;
    chat.querySelector("[data-action=resolve]").hidden = current.state === "active" && !current.mine;
    form.hidden = !(current.state === "active" && current.mine);
    transcriptEl.replaceChildren();
    for (const m of body.messages) {
      const li = el("li", { class: `by-${m.by}`, "data-by": m.by });
      li.append(el("span", { class: "who" }, m.by === "agent" ? m.author : T[m.by]));
      li.append(document.createTextNode(m.text));
      transcriptEl.append(li);
    }
    transcriptEl.scrollTop = transcriptEl.scrollHeight;
    const keep = canned.value;
    canned.replaceChildren(el("option", { value: "" }, "—"));
    for (const c of body.canned) canned.append(el("option", { value: c.text }, c.title));
    canned.value = keep;
  }

  function open(id) {
    selected = id;
    errorEl.textContent = "";
    loadQueue();
    loadChat();
  }

  chat.querySelector("[data-action=claim]").addEventListener("click", async () => {
    await post("claim");
    loadQueue();
    loadChat();
  });
  chat.querySelector("[data-action=resolve]").addEventListener("click", async () => {
    const { ok } = await post("resolve");
    if (ok) { selected = null; chat.hidden = true; }
    loadQueue();
  });
  chat.querySelector("[data-action=draft]").addEventListener("click", async (e) => {
    e.target.disabled = true;
    const { ok, body } = await post("draft");
    e.target.disabled = false;
    if (ok) textArea.value = body.draft;
  });
  canned.addEventListener("change", () => {
    if (canned.value) textArea.value = canned.value;
  });
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const text = textArea.value.trim();
    if (!text) return;
    const { ok } = await post("reply", { text });
    if (ok) textArea.value = "";
    loadChat();
  });

  let delay = 1000;
  function connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const socket = new WebSocket(`${scheme}://${location.host}${root.dataset.socketPath}`);
    socket.addEventListener("open", () => {
      delay = 1000;
      liveEl.textContent = T.live;
      liveEl.dataset.live = "1";
      loadQueue();
      loadChat();
    });
    socket.addEventListener("message", (e) => {
      const event = JSON.parse(e.data);
      if (event.type !== "event") return;
      loadQueue();
      if (event.handoff === selected) loadChat();
    });
    socket.addEventListener("close", () => {
      liveEl.textContent = T.reconnecting;
      liveEl.dataset.live = "0";
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 30000);
    });
  }

  loadQueue();
  connect();
  setInterval(loadQueue, 60000); // waiting times move on even when nothing happens
})();
