// ctest Browser.UiFlows: the web UI in a real browser (Debian's chromium driven by playwright-core)
// against a real `dagrun schedule` daemon with a token, on a DAGs folder written here.
//   node ui.test.mjs --dagrun PATH --out DIR
// Exits 77 (ctest: skipped) only when no Chromium can be found; screenshots go to DIR.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import assert from 'node:assert/strict';

const args = Object.fromEntries(process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith('--') ? [...acc, [a.slice(2), all[i + 1]]] : acc), []));
const dagrun = args.dagrun;
const out = path.resolve(args.out || 'ui-screenshots');
const chromiumPath = process.env.CHROMIUM || ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => fs.existsSync(p));
if (!chromiumPath) {
  console.log('SKIPPED: no Chromium found (install Debian\'s `chromium`: scripts/install-deps.sh, or set CHROMIUM=/path)');
  process.exit(77);
}
let chromium;
try {
  ({ chromium } = await import(new URL('./node_modules/playwright-core/index.mjs', import.meta.url)));
} catch (e) {
  console.error('playwright-core is missing: run scripts/npm-deps.sh (scripts/install-deps.sh runs it)');
  process.exit(1);
}

const token = 'browser-t0ken';
const scratch = path.join(out, 'scratch');
fs.rmSync(out, { recursive: true, force: true });
fs.mkdirSync(path.join(scratch, 'dags'), { recursive: true });
const dag = (name, text) => fs.writeFileSync(path.join(scratch, 'dags', name), text);
dag('ui_demo.yaml', `dag_id: ui_demo
description: Three steps to watch go green
tags: [demo, etl]
params:
  who: nobody
  count: {type: integer, default: 2, minimum: 1, description: how many times}
default_args: {owner: data-team}
tasks:
  - task_id: extract_the_rather_long_named_input_files
    operator: bash
    bash_command: sleep 2; echo extracted
  - task_id: transform
    operator: bash
    bash_command: sleep 1; echo transformed
    dependencies: [extract_the_rather_long_named_input_files]
  - task_id: load
    operator: bash
    bash_command: echo "loaded for {{ params.who }}"
    dependencies: [transform]
`);
dag('ui_flaky.yaml', `dag_id: ui_flaky
tags: [demo]
tasks:
  - task_id: boom
    operator: bash
    bash_command: echo "boom log line"; exit 3
  - task_id: after
    operator: bash
    bash_command: echo after
    dependencies: [boom]
`);
dag('ui_groups.yaml', `dag_id: ui_groups
tags: [groups]
tasks:
  - task_id: start
    operator: bash
    bash_command: "true"
  - task_id: finish
    operator: bash
    bash_command: "true"
    dependencies: [etl]
groups:
  - group_id: etl
    dependencies: [start]
    tasks:
      - task_id: extract
        operator: bash
        bash_command: "true"
      - task_id: boom
        operator: bash
        bash_command: exit 1
        dependencies: [extract]
`);
dag('other.yaml', `dag_id: other_ops
schedule: "@daily"
start_date: 2024-01-01
catchup: false
tags: [ops]
tasks:
  - task_id: noop
    operator: bash
    bash_command: "true"
`);

const logFile = path.join(scratch, 'daemon.log');
const daemon = spawn(dagrun, ['schedule', '--dags', path.join(scratch, 'dags'), '--db', 'sqlite:' + path.join(scratch, 'dagrun.db'),
  '--logs', path.join(scratch, 'logs'), '--listen', '127.0.0.1:0'],
  { env: { ...process.env, DAGRUN_API_TOKEN: token }, stdio: ['ignore', fs.openSync(logFile, 'w'), fs.openSync(logFile, 'a')] });
let browser;
let page;
const stop = () => { try { daemon.kill('SIGTERM'); } catch (e) { /* gone */ } };
process.on('exit', stop);

// Checks every `every` ms (checks that reload a page use a longer one: they ask the daemon for a
// whole page each time).
async function until(what, check, ms = 20000, every = 100) {
  const end = Date.now() + ms;
  for (;;) {
    let v = false;
    try {
      v = await check();
    } catch (e) {
      // A page that reloads itself (live updates) destroys the context a check ran in: try again.
      if (!/context was destroyed|navigat/i.test(String(e))) throw e;
    }
    if (v) return v;
    if (Date.now() > end) throw new Error('timed out waiting for ' + what);
    await new Promise((r) => setTimeout(r, every));
  }
}

let failures = 0;
async function flow(name, fn) {
  const began = Date.now();
  try {
    await fn();
    console.log(`ok   ${name} (${Date.now() - began} ms)`);
  } catch (e) {
    failures++;
    console.log(`FAIL ${name}: ${e.stack || e}`);
    // What the page and the daemon last said: a failure on a CI machine is read from this output alone.
    console.log(await page.evaluate(() => location.href + '\n' + document.body.innerText.slice(0, 3000)).catch(() => ''));
    console.log('--- daemon log (end) ---\n' + fs.readFileSync(logFile, 'utf8').slice(-3000));
  }
}

try {
  const port = await until('the daemon to listen', () => {
    if (daemon.exitCode !== null) throw new Error('the daemon exited:\n' + fs.readFileSync(logFile, 'utf8'));
    const m = fs.readFileSync(logFile, 'utf8').match(/serving HTTP on 127\.0\.0\.1:(\d+)/);
    return m && m[1];
  });
  const base = `http://127.0.0.1:${port}`;
  browser = await chromium.launch({ executablePath: chromiumPath, args: ['--no-sandbox'] });
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  page = await context.newPage();
  const problems = [];
  // Refused requests (a wrong token, a bad conf) are the flows' own; anything else is a problem.
  page.on('console', (m) => { if (m.type() === 'error' && !/status of 40[01]/.test(m.text())) problems.push(m.text()); });
  page.on('pageerror', (e) => problems.push(String(e)));
  const shot = (name, p = page) => p.screenshot({ path: path.join(out, name + '.png'), fullPage: true });
  // The page as served has no inline script, style attribute or event handler (the
  // Content-Security-Policy allows scripts and styles from /static/ only).
  const noInline = async (p = page) => {
    const html = await (await p.request.get(p.url())).text();
    assert.deepEqual({
      scripts: html.match(/<script(?![^>]*\ssrc=)[^>]*>/g) || [],
      styles: html.match(/<style[\s>]|\sstyle=/g) || [],
      handlers: html.match(/<[^>]*\son[a-z]+=/g) || [],
    }, { scripts: [], styles: [], handlers: [] }, 'inline code on ' + p.url());
  };
  // Waits until the page shows nothing in progress (a live page reloads itself when a run ends).
  const settled = (p = page) => until('the page to settle', () => p.evaluate(() => document.readyState === 'complete' && document.body.dataset.busy !== '1'), 30000);

  await flow('sign in with the token, back to the page asked for', async () => {
    await page.goto(base + '/dags/ui_demo?tab=details');
    assert.match(page.url(), /\/login\?next=/);
    await page.fill('input[name=token]', 'wrong');
    await page.click('button:has-text("Sign in")');
    assert.match(await page.textContent('.err'), /not this dagrun's token/);
    await page.fill('input[name=token]', token);
    await page.click('button:has-text("Sign in")');
    assert.equal(new URL(page.url()).pathname + new URL(page.url()).search, '/dags/ui_demo?tab=details');
    assert.match(await page.textContent('main'), /data-team/);
    await noInline();
  });

  await flow('DAG list: search, tag filter, tabs, owner, schedule in words', async () => {
    await page.goto(base + '/');
    await shot('01-dag-list');
    await noInline();
    assert.equal(await page.locator('#dags tbody tr').count(), 4);
    assert.match(await page.textContent('tr[data-dag=other_ops]'), /every day at 00:00/);
    assert.match(await page.textContent('tr[data-dag=other_ops]'), /next 20/);
    assert.match(await page.textContent('tr[data-dag=ui_demo]'), /data-team/);
    await page.fill('input[name=q]', 'FLAKY');
    await page.click('button:has-text("Search")');
    assert.deepEqual(await page.locator('#dags tbody tr').evaluateAll((rows) => rows.map((r) => r.dataset.dag)), ['ui_flaky']);
    await page.goto(base + '/');
    await page.click('p.tags a.tag:has-text("ops")');
    assert.deepEqual(await page.locator('#dags tbody tr').evaluateAll((rows) => rows.map((r) => r.dataset.dag)), ['other_ops']);
    await page.click('a:has-text("clear filter")');
    assert.equal(await page.locator('#dags tbody tr').count(), 4);
    // Pause from the list; the paused tab then shows it.
    await page.click('tr[data-dag=other_ops] button:has-text("Pause")');
    assert.equal(new URL(page.url()).pathname, '/');
    await page.click('nav.tabs a:has-text("paused")');
    assert.deepEqual(await page.locator('#dags tbody tr').evaluateAll((rows) => rows.map((r) => r.dataset.dag)), ['other_ops']);
    await page.click('tr[data-dag=other_ops] button:has-text("Unpause")');
  });

  await flow('trigger with the params form; a bad value is refused with the param\'s message; the run goes green live', async () => {
    await page.goto(base + '/dags/ui_demo');
    await page.click('a.button:has-text("Trigger")');
    assert.equal(await page.inputValue('input[name="param.who"]'), 'nobody');
    assert.equal(await page.inputValue('input[name="param.count"]'), '2');
    assert.match(await page.textContent('label[data-param=count]'), /how many times/);
    await page.fill('input[name="param.count"]', 'abc');
    await page.click('button:has-text("Trigger")');
    assert.equal(await page.textContent('#problem'), 'param \'count\': "abc" is not of type integer');
    assert.equal(await page.inputValue('input[name="param.count"]'), 'abc');  // what was typed, kept
    await shot('02-trigger-refused');
    await page.fill('input[name="param.count"]', '3');
    await page.fill('textarea[name=conf]', '{"note": ');
    await page.click('button:has-text("Trigger")');
    assert.match(await page.textContent('#problem'), /conf/);
    await page.fill('textarea[name=conf]', '{"note": "from the browser"}');
    await page.fill('input[name="param.who"]', 'the browser');
    await page.click('button:has-text("Trigger")');
    assert.equal(new URL(page.url()).pathname, '/dags/ui_demo');
    // The page marks itself; the cells must change colour while it stays the same page.
    await page.evaluate(() => { window.sameDocument = true; });
    await until('a task cell to turn running or green without a reload', () =>
      page.evaluate(() => window.sameDocument === true && !!document.querySelector('#grid .sq.st-running, #grid .sq.st-success')));
    await shot('03-grid-running');
    await until('the run to finish green', () => page.evaluate(() => !!document.querySelector('#grid th.run .bar.st-success')), 30000);
    // The run's end recolours the page, then reloads it (its signature changed): counted on the
    // reloaded page, not in the moment between, where the grid is not there yet.
    await until('its three task cells green', () => page.evaluate(() => document.querySelectorAll('#grid .sq.st-success').length === 3));
    await settled();
    await shot('04-grid-success');
    // The conf reached the task: its rendered field and its log.
    await page.click('#grid tr:has-text("load") .sq');
    await page.click('#details a:has-text("Task instance")');
    assert.match(await page.textContent('table.fields'), /loaded for the browser/);
    await shot('05-task-instance');
    await page.click('#tries a:has-text("log")');
    assert.match(await page.textContent('#log pre'), /loaded for the browser/);
  });

  await flow('switch tabs: grid, graph (arrows, click opens the task instance), gantt, durations, calendar, code, details', async () => {
    await page.goto(base + '/dags/ui_demo');
    for (const [tab, heading] of [['graph', 'Graph'], ['gantt', 'Gantt'], ['duration', 'Task duration'], ['landing', 'Landing times'], ['calendar', 'Calendar'],
      ['code', 'Code'], ['details', 'Details'], ['grid', 'Grid']]) {
      await page.click(`#tabs a[data-tab=${tab}]`);
      assert.equal(await page.textContent('main h2'), heading);
      assert.equal(await page.getAttribute(`#tabs a[data-tab=${tab}]`, 'aria-current'), 'page');
      await shot('06-tab-' + tab);
      await noInline();
    }
    await page.click('#tabs a[data-tab=graph]');
    assert.equal(await page.locator('svg.graph g.node').count(), 3);
    assert.equal(await page.locator('svg.graph path.edge[marker-end]').count(), 2);
    assert.equal(await page.locator('svg.graph g.node.st-success').count(), 3);
    // The long label is whole, inside its box.
    const fits = await page.evaluate(() => {
      const g = document.querySelector('svg.graph g[data-task^=extract]');
      return g.querySelector('text').getBBox().width <= g.querySelector('rect').getBBox().width;
    });
    assert.ok(fits, 'a label sticks out of its box');
    await page.click('svg.graph g[data-task=transform]');
    assert.match(page.url(), /\/tasks\/transform$/);
    await page.goto(base + '/dags/ui_demo?tab=code');
    assert.match(await page.textContent('pre.code'), /dag_id: ui_demo/);
  });

  await flow('a failed task: open its log, clear it with downstream, mark it success', async () => {
    await page.goto(base + '/dags/ui_flaky/trigger');
    await page.click('button:has-text("Trigger")');
    await until('the run to fail', () => page.evaluate(() => !!document.querySelector('#grid th.run .bar.st-failed')), 30000);
    await settled();
    await page.click('#grid tr:has-text("boom") .sq');
    await page.click('#details a:has-text("Log")');
    assert.match(await page.textContent('#log pre'), /boom log line/);
    await shot('07-failed-log');
    await page.click('a:has-text("Task instance")');
    assert.match(await page.textContent('#tries'), /failed/);
    assert.match(await page.textContent('table.kv'), /Exit code\s*3/);
    // Clear with downstream: the confirmation lists both tasks (a dry run), then the confirm clears them.
    await page.check('#clear-form input[name=downstream]');
    await page.click('#clear-form button');
    assert.deepEqual((await page.locator('#would-change li').allTextContents()).sort(), ['after', 'boom']);
    await shot('08-clear-confirm');
    // The POST and its redirect must have landed before the page is reloaded below: a reload while
    // the POST is in flight cancels it, and the clear never reaches the server.
    await Promise.all([page.waitForURL(/\/tasks\/boom$/, { timeout: 30000 }), page.click('button:has-text("Confirm: Clear")')]);
    assert.match(page.url(), /\/tasks\/boom$/);
    await until('the second try', async () => { await page.reload(); return (await page.locator('#tries tbody tr').count()) === 2; }, 60000, 1000);
    await until('the second try to fail', async () => { await page.reload(); return /failed/.test(await page.textContent('table.kv')); }, 60000, 1000);
    // Mark success: the confirmation names the task; then it is success and `after` runs.
    await page.click('button:has-text("Mark success")');
    assert.deepEqual(await page.locator('#would-change li').allTextContents(), ['boom']);
    await Promise.all([page.waitForURL(/\/tasks\/boom$/, { timeout: 30000 }), page.click('button:has-text("Confirm: Mark success")')]);
    assert.match(await page.textContent('table.kv'), /success/);
    await page.goto(base + '/dags/ui_flaky');
    await until('the run to end green after the mark', () => page.evaluate(() => !!document.querySelector('#grid th.run .bar.st-success')), 30000);
    await settled();
    await shot('09-after-mark-success');
  });

  await flow('task groups: the grid row has the group\'s state and opens; the graph shows it as one box a click opens; landing times', async () => {
    await page.goto(base + '/dags/ui_groups/trigger');
    await page.click('button:has-text("Trigger")');
    await until('the run to fail', () => page.evaluate(() => !!document.querySelector('#grid th.run .bar.st-failed')), 30000);
    await settled();
    // The grid: the group collapsed to one row, failed because etl.boom failed.
    assert.equal(await page.locator('#grid tr.group[data-group=etl] .sq.grp.st-failed').count(), 1);
    assert.equal(await page.locator('#grid th.task a[title="etl.boom"]').count(), 0);
    await page.click('#grid tr.group[data-group=etl] a.toggle');
    assert.equal(await page.getAttribute('#grid tr.group[data-group=etl] a.toggle', 'aria-expanded'), 'true');
    assert.equal(await page.locator('#grid tr:has(a[title="etl.boom"]) .sq.st-failed').count(), 1);
    assert.equal(await page.locator('#grid tr:has(a[title="etl.extract"]) .sq.st-success').count(), 1);
    await shot('12-grid-group-open');
    await noInline();
    // The graph: the group is one box (edges from start and to finish re-pointed to it); a click opens it.
    await page.goto(base + '/dags/ui_groups?tab=graph');
    assert.equal(await page.locator('svg.graph g.node').count(), 3);
    assert.equal(await page.locator('svg.graph g.node.group.st-failed[data-group=etl]').count(), 1);
    assert.equal(await page.locator('svg.graph path.edge[marker-end]').count(), 2);
    await shot('13-graph-group-collapsed');
    await page.click('svg.graph g[data-group=etl]');
    assert.match(page.url(), /[?&]open=etl/);
    assert.equal(await page.locator('svg.graph g.node').count(), 4);
    assert.equal(await page.locator('svg.graph g.node.group').count(), 0);
    assert.equal(await page.locator('svg.graph path.edge[marker-end]').count(), 3);
    assert.equal(await page.locator('svg.graph g.node.st-failed[data-task="etl.boom"]').count(), 1);
    await shot('14-graph-group-open');
    await noInline();
    await page.click('#groups a.toggle:has-text("etl")');
    assert.equal(await page.locator('svg.graph g.node.group[data-group=etl]').count(), 1);
    // Landing times: a line per task that ended.
    await page.click('#tabs a[data-tab=landing]');
    assert.equal(await page.textContent('main h2'), 'Landing times');
    assert.equal(await page.locator('svg.chart.landing polyline.series').count(), 4);
    await shot('15-landing-times');
  });

  await flow('a 390 px phone: no page scrolls sideways', async () => {
    const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true,
      storageState: await context.storageState() });
    const p = await phone.newPage();
    const pages = ['/', '/dags/ui_demo', '/dags/ui_demo?tab=graph', '/dags/ui_demo?tab=gantt', '/dags/ui_demo?tab=calendar',
      '/dags/ui_demo?tab=code', '/dags/ui_demo?tab=details', '/dags/ui_demo/trigger', '/dags/ui_groups?open=etl',
      '/dags/ui_groups?tab=graph&open=etl', '/dags/ui_demo?tab=landing'];
    await p.goto(base + '/dags/ui_flaky');
    await p.click('#grid tr:has-text("boom") .sq');
    await p.click('#details a:has-text("Task instance")');
    pages.push(new URL(p.url()).pathname);
    pages.push(new URL(p.url()).pathname.replace(/\/tasks\/boom$/, ''));
    pages.push(new URL(p.url()).pathname + '/logs/1');
    for (const [i, target] of pages.entries()) {
      await p.goto(base + target);
      const [scroll, client] = await p.evaluate(() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]);
      await p.screenshot({ path: path.join(out, `10-phone-${String(i).padStart(2, '0')}.png`), fullPage: true });
      assert.ok(scroll <= client, `${target} scrolls sideways at 390 px (${scroll} > ${client})`);
    }
    await phone.close();
  });

  await flow('dark mode, the legend, the favicon and a 404 page with a way back', async () => {
    const dark = await browser.newContext({ colorScheme: 'dark', storageState: await context.storageState() });
    const p = await dark.newPage();
    await p.goto(base + '/dags/ui_demo');
    const bg = await p.evaluate(() => getComputedStyle(document.body).backgroundColor);
    assert.notEqual(bg, 'rgb(255, 255, 255)');
    await p.click('.legend summary');
    assert.ok(await p.locator('.legend .st-up_for_retry').isVisible());
    await p.screenshot({ path: path.join(out, '11-dark.png'), fullPage: true });
    const icon = await p.request.get(base + '/static/favicon.svg');
    assert.equal(icon.status(), 200);
    const missing = await p.goto(base + '/no/such/page');
    assert.equal(missing.status(), 404);
    await p.click('a.button:has-text("All DAGs")');
    assert.equal(new URL(p.url()).pathname, '/');
    const noDag = await p.goto(base + '/dags/nope');
    assert.equal(noDag.status(), 404);
    await dark.close();
  });

  await flow('the API link opens the API\'s documentation: contents, anchors, no sideways scrolling on a phone', async () => {
    await page.goto(base + '/');
    await page.click('header.top a:has-text("API")');
    assert.equal(new URL(page.url()).pathname, '/api/v1/ui/');
    assert.equal(await page.textContent('h1'), 'dagrun REST API');
    await noInline();
    await page.click('ul.toc a[href="#get_dag_runs"]');
    assert.equal(new URL(page.url()).hash, '#get_dag_runs');
    const section = page.locator('section#get_dag_runs');
    assert.match(await section.textContent(), /\/api\/v1\/dags\/\{dag_id\}\/dagRuns/);
    assert.match(await section.textContent(), /execution_date_gte/);
    await section.locator('a:has-text("DAGRunCollection")').first().click();
    assert.equal(new URL(page.url()).hash, '#schema-DAGRunCollection');
    await shot('12-api-docs');
    const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true });
    const p = await phone.newPage();
    await p.goto(base + '/api/v1/ui/');  // open to anyone, as Airflow's
    const [scroll, client] = await p.evaluate(() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]);
    assert.ok(scroll <= client, `the API page scrolls sideways at 390 px (${scroll} > ${client})`);
    await phone.close();
  });

  await flow('sign out', async () => {
    await page.goto(base + '/');
    await page.click('button:has-text("Sign out")');
    assert.equal(new URL(page.url()).pathname, '/login');
    await page.goto(base + '/');
    assert.equal(new URL(page.url()).pathname, '/login');
  });

  await flow('no script errors in any page', async () => {
    assert.deepEqual(problems, []);
  });
} catch (e) {
  failures++;
  console.log('FAIL setup: ' + (e.stack || e));
} finally {
  if (browser) await browser.close();
  stop();
}
console.log(failures ? `${failures} flow(s) failed; screenshots in ${out}` : `all flows passed; screenshots in ${out}`);
process.exit(failures ? 1 : 0);
