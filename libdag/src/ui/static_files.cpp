// The UI's static resources, embedded in the binary: one stylesheet, one script and the icon.
// Hand-written (no build step); served from /static/ so the Content-Security-Policy can allow
// scripts and styles from this site only, with no inline ones anywhere.
#include "ui.hpp"

namespace dag::detail::ui {
namespace {

// Airflow's state colours (success green, running lime, failed red, queued grey, …); running
// also pulses, so that it never reads as success.
constexpr const char* app_css = R"css(
:root{--bg:#fff;--fg:#1d2330;--dim:#667085;--line:#e3e6ec;--panel:#f6f7f9;--link:#0b5cad;--err-bg:#fff0f0;--err-line:#f3a5a5;
--none:#fff;--none-line:#98a2b3;
--success:#008000;--running:#00ff00;--failed:#ff0000;--queued:#808080;--scheduled:#d2b48c;--up_for_retry:#ffd700;
--up_for_reschedule:#40e0d0;--upstream_failed:#ffa500;--skipped:#ff69b4;--removed:#d3d3d3;--deferred:#9370db;
color-scheme:light dark}
@media (prefers-color-scheme:dark){:root{--bg:#14171c;--fg:#e6e8eb;--dim:#9aa3b2;--line:#2b313b;--panel:#1d2128;--link:#6cb6ff;
--err-bg:#3a1d1d;--err-line:#8a3b3b;--none:#14171c;--none-line:#8893a5}}
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%}
body{margin:0;background:var(--bg);color:var(--fg);font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;overflow-wrap:anywhere}
a{color:var(--link);text-decoration:none}a:hover{text-decoration:underline}
main{padding:12px 16px 40px;max-width:1400px;margin:0 auto}
header.top{display:flex;flex-wrap:wrap;gap:8px 16px;align-items:center;justify-content:space-between;padding:8px 16px;border-bottom:1px solid var(--line);background:var(--panel)}
header.top nav{display:flex;flex-wrap:wrap;gap:12px;align-items:center}
.brand{display:flex;gap:6px;align-items:center;font-weight:600;color:var(--fg)}
h1{font-size:1.5em;margin:.3em 0 .5em}h2{font-size:1.15em;margin:1.2em 0 .5em}h3{font-size:1em}
.crumbs{margin:0;color:var(--dim);font-size:.9em}
.dim{color:var(--dim)}.lead{color:var(--dim);margin:0 0 .5em}
.err{background:var(--err-bg);border:1px solid var(--err-line);padding:.5em .8em;border-radius:6px}
table{border-collapse:collapse}
th,td{padding:4px 8px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
table.kv th{color:var(--dim);font-weight:500;white-space:nowrap}
.scroll{overflow-x:auto;max-width:100%}
form{display:inline}
.stack{display:flex;flex-direction:column;gap:10px;max-width:640px}
.stack label{display:flex;flex-direction:column;gap:4px}
.stack-sm{display:flex;flex-wrap:wrap;gap:6px 10px;align-items:center;margin:0 0 8px}
input,textarea,select,button,.button{font:inherit;color:inherit;background:var(--bg);border:1px solid var(--line);border-radius:6px;padding:5px 10px}
textarea{font-family:ui-monospace,monospace;width:100%}
button,.button{cursor:pointer;display:inline-block;background:var(--panel);color:var(--fg);margin:2px 0}
button:hover,.button:hover{border-color:var(--dim);text-decoration:none}
.primary{background:#017cee;border-color:#017cee;color:#fff}
button.link{background:none;border:none;color:var(--link);padding:0}
.danger{background:#d92d20;border-color:#d92d20;color:#fff}
fieldset.params{border:1px solid var(--line);border-radius:8px;padding:8px 12px;margin:0}
.stack label.check{flex-direction:row;align-items:center;gap:8px}
.bar-actions{display:flex;flex-wrap:wrap;gap:8px;align-items:center;margin:6px 0}
.filters{display:flex;flex-wrap:wrap;gap:6px;margin:0 0 8px}
.filters input[type=search]{flex:1 1 200px;min-width:0}
nav.tabs{display:flex;flex-wrap:wrap;gap:4px;border-bottom:1px solid var(--line);margin:8px 0}
nav.tabs a{padding:6px 10px;border-radius:6px 6px 0 0;color:var(--fg)}
nav.tabs a.on{background:var(--panel);border:1px solid var(--line);border-bottom-color:var(--panel);font-weight:600}
.tag{display:inline-block;padding:0 7px;border-radius:10px;background:var(--panel);border:1px solid var(--line);font-size:.85em;color:var(--fg)}
.tag.on{background:#017cee;color:#fff;border-color:#017cee}
.paused{color:var(--dim);font-size:.85em;border:1px solid var(--line);border-radius:10px;padding:0 6px}
.active{color:var(--success);font-size:.85em}
.count{display:inline-block;min-width:22px;text-align:center;border-radius:10px;padding:0 6px;margin-right:3px;font-size:.85em;font-weight:600;color:#000}
.st{display:inline-block;padding:0 7px;border-radius:10px;font-size:.85em;color:#000;border:1px solid transparent}
.st-none{background:var(--none);border-color:var(--none-line);color:var(--fg)}
.st-success{background:var(--success);color:#fff}.st-running{background:var(--running)}.st-failed{background:var(--failed);color:#fff}
.st-queued{background:var(--queued);color:#fff}.st-scheduled{background:var(--scheduled)}.st-up_for_retry{background:var(--up_for_retry)}
.st-up_for_reschedule{background:var(--up_for_reschedule)}.st-upstream_failed{background:var(--upstream_failed)}
.st-skipped{background:var(--skipped)}.st-removed{background:var(--removed)}.st-deferred{background:var(--deferred)}
@keyframes pulse{50%{opacity:.55}}
.st-running,.sq.st-running,.node.st-running rect{animation:pulse 1.6s ease-in-out infinite}
table.list td.actions{white-space:nowrap}
.legend{display:inline-block}.legend summary{cursor:pointer;color:var(--dim)}
.legend p{display:flex;flex-wrap:wrap;gap:4px;margin:4px 0}
/* Grid */
.grid-wrap{display:flex;flex-wrap:wrap;gap:12px;align-items:flex-start}
.grid-wrap>.scroll{flex:1 1 420px;min-width:0}
table.grid th,table.grid td{border:none;padding:1px}
table.grid th.task{font-weight:400;white-space:nowrap;padding-right:10px;max-width:260px;overflow:hidden;text-overflow:ellipsis}
table.grid th.run{vertical-align:bottom;text-align:center}
table.grid th.run a{display:flex;flex-direction:column;align-items:center}
table.grid th.run.sel{background:var(--panel)}
table.grid .date{font-size:10px;color:var(--dim);font-weight:400;writing-mode:vertical-rl;transform:rotate(180deg);height:34px}
.sq{display:block;width:16px;height:16px;border-radius:3px;border:1px solid var(--line)}
.sq.st-none{background:transparent;border:1px dashed var(--none-line)}
.sq.sel{outline:2px solid var(--link);outline-offset:1px}
.sq.grp{border-radius:8px}
table.grid tr.group th.task a.toggle{font-weight:600;color:var(--fg)}
table.grid th.d1{padding-left:16px}table.grid th.d2{padding-left:30px}table.grid th.d3{padding-left:44px}
table.grid th.d4{padding-left:58px}table.grid th.d5{padding-left:72px}table.grid th.d6{padding-left:86px}
p.groups{display:flex;flex-wrap:wrap;gap:4px 10px;align-items:center;margin:4px 0 8px}
th.pager{font-weight:400;font-size:.85em;white-space:nowrap;vertical-align:bottom}
svg .bar.st-success,svg .day.st-success{fill:var(--success)}svg .bar.st-running,svg .day.st-running{fill:var(--running)}
svg .bar.st-failed,svg .day.st-failed{fill:var(--failed)}svg .bar.st-queued,svg .day.st-queued{fill:var(--queued)}
svg .bar.st-up_for_retry{fill:var(--up_for_retry)}svg .bar.st-upstream_failed{fill:var(--upstream_failed)}
svg .bar.st-skipped{fill:var(--skipped)}svg .bar.st-scheduled{fill:var(--scheduled)}svg .bar.st-up_for_reschedule{fill:var(--up_for_reschedule)}
svg .bar.st-none,svg .day.st-none{fill:var(--line)}svg .bar.st-removed{fill:var(--removed)}
svg .bar{background:none}
.panel{flex:0 1 340px;min-width:0;background:var(--panel);border:1px solid var(--line);border-radius:8px;padding:8px 12px}
.panel h2{margin-top:.2em}
/* Graph */
svg.graph text,svg.chart text{fill:var(--fg);font-size:13px;font-family:inherit}
svg.graph .edge{fill:none;stroke:var(--dim);stroke-width:1.4}
svg.graph .arrowhead{fill:var(--dim)}
svg.graph .node rect{fill:var(--bg);stroke:var(--none-line);stroke-width:2.5}
svg.graph .node.st-none rect{stroke-dasharray:4 3}
svg.graph .node.group rect{fill:var(--panel);stroke-width:3.5}
svg.graph .node.group text{font-weight:600}
svg.graph a:hover rect{stroke-width:4}
.node.st-success rect{stroke:var(--success)!important}.node.st-running rect{stroke:var(--running)!important}
.node.st-failed rect{stroke:var(--failed)!important}.node.st-queued rect{stroke:var(--queued)!important}
.node.st-scheduled rect{stroke:var(--scheduled)!important}.node.st-up_for_retry rect{stroke:var(--up_for_retry)!important}
.node.st-up_for_reschedule rect{stroke:var(--up_for_reschedule)!important}.node.st-upstream_failed rect{stroke:var(--upstream_failed)!important}
.node.st-skipped rect{stroke:var(--skipped)!important}.node.st-removed rect{stroke:var(--removed)!important}
/* Charts */
svg.chart .grid{stroke:var(--line)}svg.chart .axis{fill:var(--dim);font-size:11px}
svg.chart .series{fill:none;stroke-width:2}
.c0{stroke:#017cee}.c1{stroke:#e8590c}.c2{stroke:#2f9e44}.c3{stroke:#ae3ec9}.c4{stroke:#f08c00}.c5{stroke:#1098ad}.c6{stroke:#e64980}.c7{stroke:#5c7cfa}
/* Pages */
.cols{display:flex;flex-wrap:wrap;gap:12px 32px;align-items:flex-start}
.cols>table{flex:1 1 320px}
.actions h2{margin-top:0}
pre{background:var(--panel);border:1px solid var(--line);border-radius:6px;padding:10px;overflow:auto;max-width:100%;white-space:pre-wrap;overflow-wrap:anywhere}
pre.field,pre.conf{margin:0;padding:4px 6px}
.log pre{max-height:75vh;font-size:12.5px}
pre.code{white-space:pre;overflow-wrap:normal}
/* API documentation (/api/v1/ui/) */
section.op{border:1px solid var(--line);border-radius:8px;padding:4px 12px 8px;margin:10px 0}
section.op h3{display:flex;flex-wrap:wrap;gap:8px;align-items:center;margin:.4em 0}section.op h4{margin:.8em 0 .3em}
.verb{display:inline-block;min-width:58px;text-align:center;border-radius:4px;padding:0 6px;font-size:.85em;font-weight:600;color:#fff;background:var(--dim)}
.verb-get{background:#0b5cad}.verb-post{background:#2f9e44}.verb-patch{background:#c05500}.verb-delete{background:#d92d20}
ul.toc ul{margin:2px 0 8px;padding-left:18px}ul.toc li{margin:2px 0}
label.auto{font-size:.9em;color:var(--dim);display:flex;gap:4px;align-items:center}
@media (max-width:600px){main{padding:8px 10px 30px}h1{font-size:1.25em}
#dags thead{display:none}#dags,#dags tbody,#dags tr,#dags td{display:block;width:100%}
#dags tr{border-bottom:1px solid var(--line);padding:6px 0}#dags td{border:none;padding:2px 4px}
#dags td:nth-child(n+2)::before{color:var(--dim);font-size:.85em;margin-right:6px}
#dags td:nth-child(2)::before{content:"Owner"}#dags td:nth-child(3)::before{content:"Schedule"}
#dags td:nth-child(4)::before{content:"Last run"}#dags td:nth-child(5)::before{content:"Recent runs"}
.cols>table{flex-basis:100%}}
)css";

// Live updates, the log tail and small conveniences; everything works without it too.
constexpr const char* app_js = R"js('use strict';
(function () {
  const body = document.body;
  const box = document.getElementById('auto-refresh');
  const storageKey = 'dagrun.live';
  let timer = null;

  function wanted() { return !box || box.checked; }
  function later(ms, fn) { if (timer) clearTimeout(timer); timer = setTimeout(fn, ms); }

  // Replace an element's st-* class (HTML or SVG) and, for a badge, its text.
  function recolour(el, state) {
    const old = el.getAttribute('class') || '';
    const next = /\bst-[a-z_]+/.test(old) ? old.replace(/\bst-[a-z_]+/, 'st-' + state) : old + ' st-' + state;
    if (next !== old) el.setAttribute('class', next);
    if (el.classList.contains('st')) {
      const text = state === 'none' ? 'no status' : state;
      if (el.textContent !== text) el.textContent = text;
    }
  }

  // The page's live endpoint: polled only while something runs, and only while wanted.
  const live = body.dataset.live;
  let busy = body.dataset.busy === '1';
  const sig = body.dataset.sig;
  async function poll() {
    timer = null;
    if (!live || !wanted() || document.hidden) return;
    try {
      const res = await fetch(live, { headers: { Accept: 'application/json' }, credentials: 'same-origin', cache: 'no-store' });
      if (!res.ok) { later(10000, poll); return; }
      const data = await res.json();
      document.querySelectorAll('[data-s]').forEach(function (el) {
        const s = data.states[el.dataset.s];
        if (s) recolour(el, s);
      });
      if (data.sig !== sig) { location.reload(); return; }
      busy = data.busy;
      body.dataset.busy = busy ? '1' : '0';
      if (busy) later(2000, poll);
    } catch (e) {
      later(10000, poll);
    }
  }
  if (box) {
    box.checked = localStorage.getItem(storageKey) !== 'off';
    box.addEventListener('change', function () {
      localStorage.setItem(storageKey, box.checked ? 'on' : 'off');
      if (box.checked && busy) later(0, poll);
    });
  }
  if (live && busy) later(2000, poll);
  document.addEventListener('visibilitychange', function () {
    if (!document.hidden && busy && live) later(0, poll);
  });

  // A running try's log grows at the bottom.
  const log = document.getElementById('log');
  if (log && log.dataset.tail) {
    const pre = log.querySelector('pre');
    let offset = Number(log.dataset.offset || 0);
    const tail = async function () {
      if (!wanted()) { setTimeout(tail, 2000); return; }
      try {
        const res = await fetch(log.dataset.tail + (log.dataset.tail.includes('?') ? '&' : '?') + 'offset=' + offset, { credentials: 'same-origin', cache: 'no-store' });
        const data = await res.json();
        const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 20;
        if (data.text) pre.append(document.createTextNode(data.text));
        if (atBottom) pre.scrollTop = pre.scrollHeight;
        offset = data.offset;
        log.dataset.offset = String(offset);
        if (data.running) setTimeout(tail, 1500); else log.dataset.done = '1';
      } catch (e) { setTimeout(tail, 5000); }
    };
    setTimeout(tail, 1500);
  }

  // A run picker shows its choice at once.
  document.querySelectorAll('select.autosubmit').forEach(function (s) {
    s.addEventListener('change', function () { s.form.submit(); });
  });
})();
)js";

constexpr const char* favicon_svg = R"svg(<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect width="32" height="32" rx="7" fill="#017cee"/><g stroke="#fff" stroke-width="2.2" fill="none"><path d="M10 10L22 16M10 22L22 16"/></g><circle cx="9" cy="10" r="3.4" fill="#fff"/><circle cx="9" cy="22" r="3.4" fill="#fff"/><circle cx="23" cy="16" r="3.9" fill="#00c853"/></svg>
)svg";

http_response resource(const char* type, const char* text) {
  http_response out{200, type, text};
  out.headers.emplace_back("Cache-Control", "public, max-age=3600");
  return out;
}

}  // namespace

std::optional<http_response> static_resource(const std::string& path) {
  if (path == "/static/app.css") return resource("text/css; charset=utf-8", app_css);
  if (path == "/static/app.js") return resource("text/javascript; charset=utf-8", app_js);
  if (path == "/static/favicon.svg" || path == "/favicon.ico") return resource("image/svg+xml", favicon_svg);
  return std::nullopt;
}

}  // namespace dag::detail::ui
