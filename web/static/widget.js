/* IPKB chat widget: one tag on a page of an allowed origin (the app's `widget_origins` setting)
 *   <script src="https://ipkb.example.gov.cn/widget.js" data-title="政策咨询" defer></script>
 * opens a small chat panel that streams answers with their sources from the app that served this script
 * (POST /widget/chat, OpenAI chat format; web/widget.py). Optional attributes: data-title, data-region
 * (the asker's place, e.g. 宁波市), data-position="left", data-open="true".
 * No framework, nothing loaded from elsewhere; the panel lives in a shadow root, so the page's styles and
 * the panel's do not mix. Every text from the server is set as text, never as HTML. If the app does not
 * list this page's origin, /widget/config answers without CORS headers and nothing is shown. */
(function () {
  "use strict";
  var script = document.currentScript || document.querySelector('script[src*="widget.js"]');
  if (!script || window.__ipkbWidget) return;
  window.__ipkbWidget = true;
  var src = new URL(script.src, location.href);
  var base = src.origin + src.pathname.replace(/\/widget\.js$/, "");  // behind a proxy prefix too
  var data = script.dataset || {};
  var HISTORY = 20;

  var CSS = [
    ":host { all: initial; }",
    "* { box-sizing: border-box; font-family: system-ui, -apple-system, 'PingFang SC', 'Microsoft YaHei', 'Noto Sans CJK SC', sans-serif; }",
    ".launcher { position: fixed; bottom: 20px; right: 20px; z-index: 2147483000; border: 0; border-radius: 24px;",
    "  padding: 12px 18px; background: #1677ff; color: #fff; font-size: 15px; cursor: pointer; box-shadow: 0 4px 14px rgba(0,0,0,.25); }",
    ".left .launcher, .left .panel { right: auto; left: 20px; }",
    ".panel { position: fixed; bottom: 20px; right: 20px; z-index: 2147483001; width: 380px; height: 560px; max-height: calc(100vh - 40px);",
    "  display: none; flex-direction: column; background: #fff; color: #222; border-radius: 12px; overflow: hidden;",
    "  box-shadow: 0 8px 30px rgba(0,0,0,.3); font-size: 14px; line-height: 1.6; }",
    ".open .panel { display: flex; } .open .launcher { display: none; }",
    "header { display: flex; align-items: center; justify-content: space-between; padding: 10px 14px; background: #1677ff; color: #fff; }",
    "header h2 { margin: 0; font-size: 16px; font-weight: 600; }",
    "header button { border: 0; background: transparent; color: #fff; font-size: 22px; cursor: pointer; line-height: 1; }",
    ".log { flex: 1; overflow-y: auto; padding: 12px; background: #f5f7fa; }",
    ".msg { margin: 8px 0; padding: 8px 11px; border-radius: 10px; max-width: 92%; white-space: pre-wrap; word-break: break-word; }",
    ".user { margin-left: auto; background: #1677ff; color: #fff; width: fit-content; }",
    ".bot { background: #fff; border: 1px solid #e5e7eb; }",
    ".bot.drafting .text { color: #888; }",
    ".bot.refused { border-left: 4px solid #d46b08; background: #fff7e6; }",
    ".notice { margin: 6px 0 0; padding: 4px 8px; border-left: 3px solid #1677ff; background: #e6f4ff; font-size: 13px; }",
    ".cites { margin: 8px 0 0; padding: 6px 0 0; border-top: 1px dashed #ddd; list-style: none; font-size: 13px; color: #555; }",
    ".cites li { margin: 3px 0; } .cites a { color: #1677ff; margin-left: 4px; white-space: nowrap; }",
    ".error { color: #c00; }",
    ".examples { display: flex; flex-wrap: wrap; gap: 6px; padding: 0 12px 8px; background: #f5f7fa; }",
    ".examples button { border: 1px solid #bcd4ff; background: #fff; color: #1677ff; border-radius: 14px; padding: 3px 10px; font-size: 13px; cursor: pointer; }",
    "form { display: flex; gap: 8px; padding: 10px; border-top: 1px solid #eee; }",
    "textarea { flex: 1; resize: none; height: 42px; padding: 8px; border: 1px solid #ccc; border-radius: 8px; font-size: 15px; }",
    "form button { border: 0; border-radius: 8px; padding: 0 16px; background: #1677ff; color: #fff; font-size: 15px; cursor: pointer; }",
    "form button:disabled { background: #9bbcf0; cursor: default; }",
    ".note { padding: 0 12px 8px; font-size: 12px; color: #888; }",
    "@media (max-width: 520px) { .panel { left: 0 !important; right: 0 !important; bottom: 0; width: 100%; height: 100%;",
    "  max-height: none; border-radius: 0; } .launcher { bottom: 14px; right: 14px; } textarea { font-size: 16px; } }"
  ].join("\n");

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    for (var k in attrs || {}) node.setAttribute(k, attrs[k]);
    if (text != null) node.textContent = text;
    return node;
  }

  function pagesText(pages) {
    return pages && pages.length ? "第" + pages.join("、") + "页" : "";
  }

  function fileLink(docId, source, pages) {
    var anchor = pages && pages.length && /\.pdf$/i.test(source || "") ? "#page=" + pages[0] : "";
    return base + "/files/" + encodeURIComponent(docId) + anchor;
  }

  function start(config) {
    var host = el("div", {id: "ipkb-widget"});
    var root = host.attachShadow({mode: "open"});
    var frame = el("div", {"class": "frame" + (data.position === "left" ? " left" : "")});
    var title = data.title || config.title;
    root.appendChild(el("style", null, CSS));
    root.appendChild(frame);
    var launcher = el("button", {"class": "launcher", type: "button", "aria-label": "打开" + title}, "💬 " + title);
    var panel = el("section", {"class": "panel", role: "dialog", "aria-label": title});
    var header = el("header");
    var close = el("button", {type: "button", "aria-label": "关闭"}, "×");
    header.appendChild(el("h2", null, title));
    header.appendChild(close);
    var log = el("div", {"class": "log", "aria-live": "polite"});
    log.appendChild(el("div", {"class": "msg bot"}, "您好！请输入您想咨询的知识产权政策问题，答案将注明出处。"));
    var examples = el("div", {"class": "examples"});
    (config.examples || []).forEach(function (q) {
      var b = el("button", {type: "button"}, q);
      b.addEventListener("click", function () { ask(q); });
      examples.appendChild(b);
    });
    var form = el("form");
    var box = el("textarea", {placeholder: "请输入问题", maxlength: String(config.max_question_chars || 500),
                              "aria-label": "问题"});
    var send = el("button", {type: "submit"}, "发送");
    form.appendChild(box);
    form.appendChild(send);
    var note = el("div", {"class": "note"}, "答案依据政策文件自动生成，以原文为准" +
                  (config.hotline ? "；人工咨询请拨打 " + config.hotline : "") + "。");
    [header, log, examples, form, note].forEach(function (n) { panel.appendChild(n); });
    frame.appendChild(launcher);
    frame.appendChild(panel);
    document.body.appendChild(host);

    var history = [];
    var busy = false;
    function toggle(open) {
      frame.classList.toggle("open", open);
      if (open) box.focus(); else launcher.focus();
    }
    launcher.addEventListener("click", function () { toggle(true); });
    close.addEventListener("click", function () { toggle(false); });
    form.addEventListener("submit", function (e) { e.preventDefault(); ask(box.value); });
    box.addEventListener("keydown", function (e) {
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); ask(box.value); }
    });
    if (data.open === "true") toggle(true);

    function scroll() { log.scrollTop = log.scrollHeight; }

    function showAnswer(bubble, answer) {
      bubble.textContent = "";
      bubble.classList.remove("drafting");
      if (answer.refused) bubble.classList.add("refused");
      bubble.appendChild(el("div", {"class": "text"}, (answer.refused ? "⚠️ 未找到答案\n" : "") + answer.body));
      (answer.notices || []).forEach(function (n) { bubble.appendChild(el("div", {"class": "notice"}, n)); });
      var docOf = {};
      (answer.passages || []).forEach(function (p) { docOf[p.chunk_id] = p.doc_id; });
      if (!answer.refused && answer.citations && answer.citations.length) {
        var list = el("ol", {"class": "cites", "aria-label": "来源"});
        answer.citations.forEach(function (c) {
          var parts = ["[" + c.n + "]", "《" + c.title + "》"];
          if (c.doc_number) parts.push(c.doc_number);
          if (pagesText(c.pages)) parts.push(pagesText(c.pages));
          var item = el("li", null, parts.join(" "));
          var link = el("a", {href: fileLink(c.doc_id || docOf[c.chunk_id] || "", c.source, c.pages),
                              target: "_blank", rel: "noopener"}, "打开原文");
          item.appendChild(link);
          list.appendChild(item);
        });
        bubble.appendChild(list);
      }
      scroll();
    }

    function fail(bubble, message) {
      bubble.classList.remove("drafting");
      bubble.textContent = "";
      bubble.appendChild(el("span", {"class": "error"}, message));
    }

    function ask(text) {
      var question = (text || "").trim();
      if (!question || busy) return;
      busy = true;
      send.disabled = true;
      box.value = "";
      examples.style.display = "none";
      log.appendChild(el("div", {"class": "msg user"}, question));
      var bubble = el("div", {"class": "msg bot drafting"});
      var body = el("div", {"class": "text"}, "…");
      bubble.appendChild(body);
      log.appendChild(bubble);
      scroll();
      var payload = {model: config.model, stream: true,
                     messages: history.slice(-HISTORY).concat([{role: "user", content: question}])};
      if (data.region) payload.ipkb = {region: data.region};
      var draft = "", content = "", final = null;
      fetch(base + "/widget/chat", {method: "POST", headers: {"content-type": "application/json"},
                                    body: JSON.stringify(payload)})
        .then(function (response) {
          if (!response.ok) {
            return response.json().then(function (e) { throw new Error(e.error && e.error.message || "HTTP " + response.status); },
                                        function () { throw new Error("HTTP " + response.status); });
          }
          var reader = response.body.getReader(), decoder = new TextDecoder(), buffer = "";
          function handle(event) {
            var line = event.split("\n").filter(function (l) { return l.indexOf("data:") === 0; })
                                       .map(function (l) { return l.slice(5).trim(); }).join("");
            if (!line || line === "[DONE]") return;
            var obj = JSON.parse(line);
            if (obj.error) throw new Error(obj.error.message);
            var delta = obj.choices && obj.choices[0] && obj.choices[0].delta || {};
            if (obj.ipkb && obj.ipkb.draft) draft += obj.ipkb.draft;
            if (delta.content) content += delta.content;
            if (obj.ipkb && obj.ipkb.answer !== undefined) final = obj.ipkb;
            if (!final) { body.textContent = content || draft || "…"; scroll(); }
          }
          function pump() {
            return reader.read().then(function (step) {
              if (step.done) return;
              buffer += decoder.decode(step.value, {stream: true});
              var events = buffer.split("\n\n");
              buffer = events.pop();
              events.forEach(handle);
              return pump();
            });
          }
          return pump();
        })
        .then(function () {
          if (!final) throw new Error("连接中断，请重试");
          showAnswer(bubble, final);
          history.push({role: "user", content: question}, {role: "assistant", content: final.answer});
        })
        .catch(function (error) {
          fail(bubble, "⚠️ " + (error && error.message || "网络错误，请稍后再试"));
        })
        .then(function () { busy = false; send.disabled = false; scroll(); });
    }
  }

  fetch(base + "/widget/config", {method: "POST"})  // POST: the browser always says its Origin
    .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
    .then(function (config) {
      if (document.body) start(config);
      else document.addEventListener("DOMContentLoaded", function () { start(config); });
    })
    .catch(function () { /* not an allowed origin, or the app is down: the page stays as it is */ });
})();
