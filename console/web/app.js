// sluice console: a client of sluice's /ui/api (the admin API's data, narrowed to what the
// signed-in user may see). Plain ES modules, no framework and nothing from another origin.
// Pages: #/cluster, #/queues, #/jobs, #/job/<namespace>/<name>, #/activity.

const TOKEN_KEY = 'sluice.console.token';
const $ = (id) => document.getElementById(id);

/** Escapes text for an HTML string (the cluster map is built as one string: 40,000 cells). */
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);

/** Builds an element; children are nodes or text (never parsed as HTML). */
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat(Infinity)) if (c !== null && c !== undefined && c !== false) el.append(c instanceof Node ? c : String(c));
  return el;
}

const fmtTime = (iso) => (iso ? new Date(iso).toLocaleString() : '');
const plural = (n, w) => `${n} ${w}${n === 1 ? '' : 's'}`;

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

const state = {
  token: sessionStorage.getItem(TOKEN_KEY),
  me: null,
  route: null,
  /** Cluster page: rows by id, their rendered HTML, the list element of each group. */
  cluster: null,
  stream: null,
  refreshTimer: null,
};

async function api(path) {
  const res = await fetch(path, { headers: { authorization: `Bearer ${state.token}` }, cache: 'no-store' });
  const body = await res.json().catch(() => ({}));
  if (res.status === 401) {
    signOut(body.message ?? 'the token was refused');
    throw new ApiError(401, body.message ?? 'signed out');
  }
  if (!res.ok) throw new ApiError(res.status, body.message ?? `${res.status} ${res.statusText}`);
  return body;
}

// ---- sign-in ----------------------------------------------------------------------------

function showSignIn(message) {
  $('signin').hidden = false;
  $('nav').hidden = true;
  $('who').hidden = true;
  $('page').replaceChildren();
  $('signin-error').textContent = message ?? '';
  document.title = 'Sign in - sluice console';
  $('token').focus();
}

function signOut(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  state.token = null;
  state.me = null;
  stopStream();
  showSignIn(message);
}

async function signIn(token) {
  state.token = token;
  try {
    state.me = await api('/ui/api/whoami');
  } catch (e) {
    if (!(e instanceof ApiError) || e.status !== 401) showSignIn(`cannot reach sluice: ${e.message}`);
    return;
  }
  sessionStorage.setItem(TOKEN_KEY, token);
  $('signin').hidden = true;
  $('nav').hidden = false;
  $('who').hidden = false;
  $('user').textContent = `${state.me.user}${state.me.admin ? ' (admin)' : ''}`;
  startStream();
  if (!location.hash || location.hash === '#') location.hash = '#/cluster';
  else route();
}

// ---- live updates (server-sent events over fetch, so the token stays in a header) -------

function setLive(on) {
  const el = $('live');
  el.textContent = on ? 'live' : 'reconnecting';
  el.className = `live ${on ? 'on' : 'off'}`;
}

function stopStream() {
  state.stream?.abort();
  state.stream = null;
}

async function startStream() {
  stopStream();
  const ctrl = new AbortController();
  state.stream = ctrl;
  while (!ctrl.signal.aborted) {
    try {
      const res = await fetch('/ui/api/events', { headers: { authorization: `Bearer ${state.token}` }, signal: ctrl.signal, cache: 'no-store' });
      if (res.status === 401) return signOut('the token is no longer accepted');
      if (!res.ok || !res.body) throw new Error(`events: ${res.status}`);
      setLive(true);
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value;
        let end;
        while ((end = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, end);
          buf = buf.slice(end + 2);
          let event = 'message';
          let data = '';
          for (const line of block.split('\n')) {
            if (line.startsWith('event: ')) event = line.slice(7);
            else if (line.startsWith('data: ')) data += line.slice(6);
          }
          if (data) onEvent(event, JSON.parse(data));
        }
      }
    } catch (e) {
      if (ctrl.signal.aborted) return;
    }
    setLive(false);
    await new Promise((r) => setTimeout(r, 2000));
  }
}

function onEvent(event, data) {
  const page = state.route?.page;
  if (event === 'nodes' && page === 'cluster' && state.cluster) patchRows(data.rows, data.gone);
  else if (event === 'cluster' && page === 'cluster') scheduleRefresh(0);
  else if (event === 'changed' && page !== 'cluster') scheduleRefresh(100);
}

/** Fetches the open page again soon, at most once a second; changes arriving meanwhile
 * are folded into one fetch. */
function scheduleRefresh(ms) {
  if (state.refreshTimer) return;
  const wait = Math.max(ms, 1000 - (performance.now() - (state.refreshedAt ?? -Infinity)));
  state.refreshTimer = setTimeout(() => {
    state.refreshTimer = null;
    state.refreshedAt = performance.now();
    render(true);
  }, wait);
}

// ---- routing ----------------------------------------------------------------------------

function parseRoute() {
  const parts = location.hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
  if (parts[0] === 'job' && parts.length === 3) return { page: 'job', namespace: parts[1], name: parts[2] };
  if (['cluster', 'queues', 'jobs', 'activity'].includes(parts[0])) return { page: parts[0] };
  return { page: 'cluster' };
}

function route() {
  if (!state.me) return;
  state.navAt = performance.now();
  const next = parseRoute();
  const changed = JSON.stringify(next) !== JSON.stringify(state.route);
  state.route = next;
  for (const a of document.querySelectorAll('#nav a')) {
    if (a.dataset.page === (next.page === 'job' ? 'jobs' : next.page)) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  if (changed) {
    state.cluster = null;
    $('page').replaceChildren(h('p', { class: 'note' }, 'Loading...'));
  }
  render(false);
}

async function render(refresh) {
  const r = state.route;
  const pages = { cluster: clusterPage, queues: queuesPage, jobs: jobsPage, job: jobPage, activity: activityPage };
  try {
    await pages[r.page](r, refresh);
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) return;
    if (state.route !== r) return;
    $('page').replaceChildren(h('h1', {}, 'Cannot show this page'), h('p', { class: 'error', role: 'alert' }, e.message));
  }
}

function setPage(title, ...content) {
  document.title = `${title} - sluice console`;
  $('page').replaceChildren(...content);
}

// ---- Cluster ----------------------------------------------------------------------------

/** A GPU cell's class: w = whole GPU in use, s1..s9 = shared and that full, x = unhealthy, f = free. */
function cellClass(milli, bad) {
  if (bad) return 'x';
  if (milli <= 0) return 'f';
  if (milli >= 1000) return 'w';
  return `s${Math.min(9, Math.max(1, Math.round(milli / 100)))}`;
}

/** A row's cells as few elements as it takes: a run of equal whole, free or unhealthy cells
 * is one element drawn as n cells (r2..r16), a shared cell one element of its own. */
function cellsHtml(row) {
  const bad = row.unhealthy !== '';
  let out = '';
  let run = '';
  let n = 0;
  const flush = () => {
    if (n > 0) out += `<i class="c ${run}${n > 1 ? ` r${n}` : ''}"></i>`;
    n = 0;
  };
  for (const milli of row.cells) {
    const cls = cellClass(milli, bad);
    if (cls !== run || cls[0] === 's' || n === 16) {
      flush();
      run = cls;
    }
    n++;
  }
  flush();
  return out;
}

function countCells(row) {
  const t = { gpus: row.cells.length, whole: 0, shared: 0, free: 0, unhealthy: 0 };
  if (row.unhealthy) t.unhealthy = row.cells.length;
  else for (const c of row.cells) c <= 0 ? t.free++ : c >= 1000 ? t.whole++ : t.shared++;
  return t;
}

function rowSummary(row) {
  const t = countCells(row);
  const parts = [`${row.name}: ${plural(t.gpus, 'GPU')}`];
  if (row.unhealthy) parts.push(`unhealthy: ${row.unhealthy}`);
  else parts.push(`${t.whole} whole, ${t.shared} shared, ${t.free} free`);
  if (row.stranded > 0) parts.push(`${row.stranded} stranded`);
  return parts.join(', ');
}

function rowInner(row) {
  const cells = cellsHtml(row);
  const bad = row.unhealthy !== '';
  const title = bad ? ` title="${esc(row.unhealthy)}"` : '';
  return (
    `<span class="nn"${title}>${esc(row.name)}</span><span class="cells" aria-hidden="true">${cells}</span>` +
    `<span class="st">${row.stranded > 0 ? `${row.stranded} stranded` : ''}</span><span class="sr">${esc(rowSummary(row))}</span>` +
    (bad ? `<span class="why">${esc(row.unhealthy)}</span>` : '')
  );
}

const rowKey = (row) => JSON.stringify([row.cells, row.unhealthy, row.stranded, row.model]);

function groupKey(row) {
  return `${row.model}|${row.resource}`;
}

async function clusterPage(_r, refresh) {
  const view = await api('/ui/api/cluster');
  if (refresh && state.cluster && view.rows.every((r) => state.cluster.lists.has(groupKey(r)))) {
    // The recent pod mix changed: every stranded figure may have; redraw only rows that did.
    const gone = [...state.cluster.rows.keys()].filter((id) => !view.rows.some((r) => r.id === id));
    patchRows(view.rows, gone);
    return;
  }
  const t0 = performance.now();
  const groups = new Map();
  for (const row of view.rows) {
    const k = groupKey(row);
    if (!groups.has(k)) groups.set(k, []);
    groups.get(k).push(row);
  }
  const figures = h('div', { class: 'figures', id: 'totals' });
  const legend = h(
    'p',
    { class: 'legend' },
    h('span', {}, h('i', { class: 'c w', 'aria-hidden': 'true' }), 'whole GPU in use'),
    h('span', {}, h('i', { class: 'c s5', 'aria-hidden': 'true' }), 'shared (filled as used)'),
    h('span', {}, h('i', { class: 'c f', 'aria-hidden': 'true' }), 'free'),
    h('span', {}, h('i', { class: 'c x', 'aria-hidden': 'true' }), 'unhealthy'),
    h('span', {}, 'stranded: free GPUs the recent pod mix cannot use'),
  );
  const filter = h('input', { type: 'search', id: 'node-filter', placeholder: 'node name', 'aria-label': 'Filter nodes by name' });
  const onlyIssues = h('input', { type: 'checkbox', id: 'only-issues' });
  const tools = h('div', { class: 'tools' }, filter, h('label', {}, onlyIssues, ' only nodes with stranded or unhealthy GPUs'));
  const mixText = view.mix.length
    ? `Recent pod mix: ${view.mix.map((m) => `${m.share < 1 ? `${m.share} GPU` : plural(m.gpus, 'GPU')}${m.models.length ? ` (${m.models.join(',')})` : ''} ${Math.round(m.weight * 100)} %`).join(', ')}`
    : 'No GPU pods seen yet: nothing is counted as stranded.';
  const sections = [];
  const lists = new Map();
  for (const [k] of groups) {
    const [model, resource] = k.split('|');
    const id = `g-${sections.length}`;
    const list = h('ul', { class: 'nodes', 'aria-labelledby': id });
    lists.set(k, list);
    sections.push(
      h('section', { class: 'group', 'data-group': k }, h('div', { class: 'group-head' }, h('h2', { id }, `${model || 'unlabelled model'} `, h('span', { class: 'note' }, resource)), h('span', { class: 'note', 'data-group-sum': k })), list),
    );
  }
  setPage('Cluster', h('h1', {}, 'Cluster'), figures, legend, h('p', { class: 'note', id: 'mix' }, mixText), tools, ...sections);
  const keys = new Map();
  for (const r of view.rows) keys.set(r.id, rowKey(r));
  const c = { rows: new Map(), keys, data: new Map(view.rows.map((r) => [r.id, r])), lists, filter: null };
  state.cluster = c;
  const apply = (lis) => {
    const q = filter.value.trim().toLowerCase();
    const issues = onlyIssues.checked;
    for (const [id, li] of lis) {
      const d = c.data.get(id);
      li.hidden = (q !== '' && !d.name.toLowerCase().includes(q)) || (issues && !d.unhealthy && !(d.stranded > 0));
    }
  };
  c.filter = apply;
  filter.addEventListener('input', () => apply(c.rows));
  onlyIssues.addEventListener('change', () => apply(c.rows));
  updateTotals();
  // The rows are drawn in chunks: the first screenful at once, the rest a chunk per task,
  // so the page shows and responds at once on a cluster of thousands of nodes.
  const order = [...groups.values()].flat();
  let next = 0;
  const drawChunk = (size) => {
    if (state.cluster !== c) return;
    const end = Math.min(order.length, next + size);
    const byList = new Map();
    for (let i = next; i < end; i++) {
      const r = c.data.get(order[i].id);
      if (!r) continue; // gone meanwhile
      const k = groupKey(r);
      byList.set(k, (byList.get(k) ?? '') + `<li class="node${r.unhealthy ? ' bad' : ''}" data-id="${esc(r.id)}">${rowInner(r)}</li>`);
    }
    const drawn = new Map();
    for (const [k, html] of byList) {
      const list = lists.get(k);
      const before = list.children.length;
      list.insertAdjacentHTML('beforeend', html);
      for (let i = before; i < list.children.length; i++) {
        const li = list.children[i];
        c.rows.set(li.dataset.id, li);
        drawn.set(li.dataset.id, li);
      }
    }
    if (filter.value || onlyIssues.checked) apply(drawn);
    const first = next === 0;
    next = end;
    if (first) return;
    if (next < order.length) setTimeout(() => drawChunk(1000), 0);
    else document.body.dataset.clusterComplete = String(Math.round(performance.now() - (state.navAt ?? t0)));
  };
  drawChunk(120);
  // Two frames: the second callback runs once the frame with the first rows was laid out
  // and painted; only then are the other rows drawn.
  requestAnimationFrame(() =>
    requestAnimationFrame(() => {
      // Milliseconds from the page being asked for (fetch included) to the map on screen.
      document.body.dataset.clusterRendered = String(Math.round(performance.now() - (state.navAt ?? t0)));
      if (next < order.length) drawChunk(1000);
    }),
  );
}

/** Replaces only the rows whose cells or figures changed. */
function patchRows(rows, gone) {
  const c = state.cluster;
  if (!c) return;
  let changed = 0;
  for (const row of rows) {
    const key = rowKey(row);
    if (c.keys.get(row.id) === key) continue;
    const known = c.data.has(row.id);
    c.keys.set(row.id, key);
    c.data.set(row.id, row);
    changed++;
    let li = c.rows.get(row.id);
    if (!li) {
      // Known but not drawn yet: its chunk draws the newest data.
      if (known) continue;
      const list = c.lists.get(groupKey(row));
      if (!list) {
        // A node of a model not on the page: draw the page again.
        scheduleRefresh(0);
        continue;
      }
      li = h('li', { 'data-id': row.id });
      list.append(li);
      c.rows.set(row.id, li);
    }
    li.className = `node${row.unhealthy ? ' bad' : ''}`;
    li.innerHTML = rowInner(row);
    c.filter?.(new Map([[row.id, li]]));
  }
  for (const name of gone ?? []) {
    for (const id of [...c.data.keys()]) {
      if (id !== name && !id.startsWith(`${name}|`)) continue;
      c.rows.get(id)?.remove();
      c.rows.delete(id);
      c.data.delete(id);
      c.keys.delete(id);
      changed++;
    }
  }
  if (changed) updateTotals();
}

function updateTotals() {
  const c = state.cluster;
  const total = { nodes: new Set(), gpus: 0, whole: 0, shared: 0, free: 0, unhealthy: 0, stranded: 0 };
  const byGroup = new Map();
  for (const row of c.data.values()) {
    const t = countCells(row);
    total.nodes.add(row.name);
    for (const k of ['gpus', 'whole', 'shared', 'free', 'unhealthy']) total[k] += t[k];
    total.stranded += row.stranded;
    const g = byGroup.get(groupKey(row)) ?? { nodes: 0, gpus: 0, free: 0, stranded: 0 };
    g.nodes++;
    g.gpus += t.gpus;
    g.free += t.free;
    g.stranded += row.stranded;
    byGroup.set(groupKey(row), g);
  }
  const fig = (k, v, label) => h('div', { class: 'figure', 'data-k': k }, h('span', { class: 'v' }, String(v)), h('span', { class: 'k' }, label));
  $('totals').replaceChildren(
    fig('nodes', total.nodes.size, 'GPU nodes'),
    fig('gpus', total.gpus, 'GPUs'),
    fig('whole', total.whole, 'whole, in use'),
    fig('shared', total.shared, 'shared'),
    fig('free', total.free, 'free'),
    fig('unhealthy', total.unhealthy, 'unhealthy'),
    fig('stranded', Math.round(total.stranded * 10) / 10, 'stranded (mix cannot use)'),
  );
  for (const el of document.querySelectorAll('[data-group-sum]')) {
    const g = byGroup.get(el.dataset.groupSum);
    el.textContent = g ? `${plural(g.nodes, 'node')}, ${g.gpus} GPUs, ${g.free} free, ${Math.round(g.stranded * 10) / 10} stranded` : 'no nodes';
  }
}

// ---- Queues -----------------------------------------------------------------------------

function bar(held, cap) {
  const pct = cap > 0 ? Math.min(100, Math.round((held / cap) * 10) * 10) : held > 0 ? 100 : 0;
  return h('span', { class: 'bar', 'aria-hidden': 'true' }, h('b', { class: `p${pct}${cap > 0 && held > cap ? ' over' : ''}` }));
}

/** A queue line's GPU model: the quota row's model, what an any-model row holds on, or a model no row covers. */
function modelCell(r) {
  const name = r.model || 'any model';
  const notes = [];
  if (!r.quota) notes.push('held without a quota row for this model');
  else if (!r.model && r.heldOn.length > 0 && (r.heldOn.length > 1 || r.heldOn[0].model)) notes.push(`held on ${r.heldOn.map((x) => `${x.model || 'unlabelled nodes'}: ${x.gpus}`).join(', ')}`);
  return h('span', {}, h('span', { 'data-v': 'model' }, name), h('div', { class: 'note' }, r.resource), notes.map((n) => h('div', { class: 'note' }, n)));
}

async function queuesPage() {
  const data = await api('/ui/api/queues');
  const head = ['Queue', 'Turn', 'Weight', 'Held', 'Fair share', 'Waiting', 'GPU model', 'Guaranteed held / quota', 'Borrowed', 'Best-effort held / cap'];
  const body = [];
  for (const q of data.queues) {
    const res = q.resources.length ? q.resources : [null];
    // The queue's own figures span its lines (one per GPU model).
    const span = res.length > 1 ? res.length : null;
    res.forEach((r, i) => {
      const first = i === 0;
      const cell = (label, v, cls, k) => h('td', { class: cls, 'data-label': label, 'data-k': k }, v);
      const queueCell = (label, v, k) => (first ? h('td', { class: 'n', 'data-label': label, 'data-k': k, rowspan: span }, v) : null);
      body.push(
        h(
          'tr',
          { 'data-queue': q.name, 'data-resource': r?.resource ?? '', 'data-model': r?.model ?? '', class: first ? 'first' : 'more' },
          first ? h('th', { scope: 'row', rowspan: span, 'data-label': 'Queue' }, q.name, q.cohort ? h('div', { class: 'note' }, `cohort ${q.cohort}`) : null, q.open ? null : h('div', { class: 'note' }, 'closed')) : null,
          queueCell('Turn', String(q.turn), 'turn'),
          queueCell('Weight', String(q.weight), 'weight'),
          queueCell('Held', String(q.held), 'held'),
          queueCell('Fair share', String(q.fairShare), 'fairShare'),
          queueCell('Waiting', String(q.waiting), 'waiting'),
          cell('GPU model', r ? modelCell(r) : 'no quota', '', 'model'),
          cell('Guaranteed', r ? h('span', {}, h('span', { 'data-v': 'guaranteedHeld' }, String(r.guaranteedHeld)), ' / ', h('span', { 'data-v': 'guaranteedQuota' }, String(r.guaranteedQuota)), bar(r.guaranteedHeld, r.guaranteedQuota)) : '', 'n', 'guaranteed'),
          cell('Borrowed', r ? String(r.borrowed) : '', 'n', 'borrowed'),
          cell('Best-effort', r ? h('span', {}, h('span', { 'data-v': 'bestEffortHeld' }, String(r.bestEffortHeld)), ' / ', h('span', { 'data-v': 'bestEffortCap' }, String(r.bestEffortCap)), bar(r.bestEffortHeld, r.bestEffortCap)) : '', 'n', 'bestEffort'),
        ),
      );
    });
  }
  const table = h('table', { class: 'cards', id: 'queues' }, h('caption', { class: 'sr' }, 'Queues per GPU model: quota, held GPUs and fair-share standing'), h('thead', {}, h('tr', {}, head.map((x, i) => h('th', { scope: 'col', class: i >= 1 && i <= 5 ? 'n' : '' }, x)))), h('tbody', {}, body));
  setPage(
    'Queues',
    h('h1', {}, 'Queues'),
    h('p', { class: 'note' }, `One line per quota row of a queue (GPU resource and model; "any model" counts every model). Turn: the order in which queues are offered their next job (lowest held / weight first). Fair share: what all queues hold, split by weight. Borrowed: guaranteed GPUs held beyond the row's own quota, lent by the queue's cohort. Evaluated ${fmtTime(data.evaluatedAt)}.`),
    h('div', { class: 'scroll' }, table),
  );
}

// ---- Jobs -------------------------------------------------------------------------------

const jobLink = (ns, name) => h('a', { class: 'job', href: `#/job/${encodeURIComponent(ns)}/${encodeURIComponent(name)}` }, `${ns}/${name}`);

async function jobsPage() {
  const { queues } = await api('/ui/api/queues');
  const lists = await Promise.all(queues.map((q) => api(`/ui/api/v1/queues/${encodeURIComponent(q.name)}/jobs`).then((j) => ({ q, j }))));
  const out = [h('h1', {}, 'Jobs')];
  let any = false;
  for (const { q, j } of lists) {
    const hidden = q.waiting - j.waiting.length;
    if (j.waiting.length === 0 && j.running.length === 0 && hidden <= 0) continue;
    any = true;
    out.push(h('h2', { id: `q-${q.name}` }, `Queue ${q.name}`));
    if (j.waiting.length > 0) {
      const eta = j.waiting.some((w) => w.estimatedStartTime);
      const head = ['Position', 'Job', 'User', 'GPUs', 'Waiting for', 'Reason', ...(eta ? ['Estimated start'] : []), 'Submitted'];
      out.push(h('h3', {}, 'Waiting, in release order'));
      out.push(
        h(
          'div',
          { class: 'scroll' },
          h(
            'table',
            { class: 'cards waiting', 'data-queue': q.name },
            h('caption', { class: 'sr' }, `Waiting jobs of queue ${q.name}, in release order`),
            h('thead', {}, h('tr', {}, head.map((x) => h('th', { scope: 'col', class: x === 'Position' || x === 'GPUs' ? 'n' : null }, x)))),
            h(
              'tbody',
              {},
              j.waiting.map((w) =>
                h(
                  'tr',
                  { 'data-job': `${w.namespace}/${w.name}` },
                  h('td', { class: 'n', 'data-label': 'Position', 'data-k': 'position' }, String(w.position)),
                  h('td', { 'data-label': 'Job' }, jobLink(w.namespace, w.name)),
                  h('td', { 'data-label': 'User' }, w.user),
                  h('td', { class: 'n', 'data-label': 'GPUs', 'data-k': 'gpus' }, `${w.gpus}${w.model ? ` ${w.model}` : ''}`),
                  h('td', { 'data-label': 'Waiting for' }, h('span', { class: 'tag queued' }, w.waitingFor)),
                  h('td', { class: 'reason', 'data-label': 'Reason', 'data-k': 'reason' }, w.reason),
                  eta ? h('td', { 'data-label': 'Estimated start' }, fmtTime(w.estimatedStartTime)) : null,
                  h('td', { 'data-label': 'Submitted' }, fmtTime(w.submittedAt)),
                ),
              ),
            ),
          ),
        ),
      );
    }
    if (hidden > 0) out.push(h('p', { class: 'note' }, `${plural(hidden, 'more waiting job')} in namespaces you may not list pods in.`));
    if (j.running.length > 0) {
      out.push(h('h3', {}, 'Running'));
      out.push(
        h(
          'div',
          { class: 'scroll' },
          h(
            'table',
            { class: 'cards running', 'data-queue': q.name },
            h('caption', { class: 'sr' }, `Running jobs of queue ${q.name}`),
            h('thead', {}, h('tr', {}, ['Job', 'User', 'QoS', 'GPUs', 'State', 'Released'].map((x) => h('th', { scope: 'col', class: x === 'GPUs' ? 'n' : null }, x)))),
            h(
              'tbody',
              {},
              j.running.map((r) =>
                h(
                  'tr',
                  { 'data-job': `${r.namespace}/${r.name}` },
                  h('td', { 'data-label': 'Job' }, jobLink(r.namespace, r.name)),
                  h('td', { 'data-label': 'User' }, r.user),
                  h('td', { 'data-label': 'QoS' }, r.qos),
                  h('td', { class: 'n', 'data-label': 'GPUs', 'data-k': 'gpus' }, String(r.gpus)),
                  h('td', { 'data-label': 'State' }, h('span', { class: `tag ${r.state}` }, r.state)),
                  h('td', { 'data-label': 'Released' }, fmtTime(r.releasedAt)),
                ),
              ),
            ),
          ),
        ),
      );
    }
  }
  if (!any) out.push(h('p', { class: 'note' }, state.me.admin ? 'No job waits or runs in any queue.' : 'No job of a namespace you may list pods in waits or runs.'));
  setPage('Jobs', ...out);
}

async function jobPage(r) {
  const j = await api(`/ui/api/v1/jobs/${encodeURIComponent(r.namespace)}/${encodeURIComponent(r.name)}`);
  const facts = [
    ['State', h('span', { class: `tag ${j.state}`, 'data-k': 'state' }, j.state)],
    ['Queue', j.queue],
    ['QoS', j.qos],
    ['User', j.user || '(unknown)'],
    ['GPUs', `${j.gpus} ${j.resource}${j.model ? ` (${j.model})` : ''}`],
    ['Gang size', String(j.gangSize)],
  ];
  if (j.position !== null && j.position !== undefined) facts.push(['Position', String(j.position)]);
  if (j.reason) facts.push(['Waiting because', h('span', { 'data-k': 'reason' }, j.reason)]);
  if (j.estimatedStartTime) facts.push(['Estimated start', fmtTime(j.estimatedStartTime)]);
  const history = [['gated', 'Submitted and gated', j.submittedAt]];
  if (j.releasedAt) history.push(['released', 'Released by the queue', j.releasedAt]);
  const bound = j.pods.filter((p) => p.node);
  // Bound has no time of its own in the record: it follows the release (or the submission).
  if (bound.length) history.push(['running', `Bound: ${plural(bound.length, 'pod')} on ${[...new Set(bound.map((p) => p.node))].join(', ')}`, null, `${j.releasedAt ?? j.submittedAt}~`]);
  if (j.preemptedBy) history.push(['preempted', `Preempted by ${j.preemptedBy}`, j.preemptedAt]);
  // Preemptions this job made and its failed binds, from the store's records (absent without a store).
  const activity = await api('/ui/api/activity').catch(() => ({ items: [] }));
  for (const it of activity.items) {
    if (it.namespace !== j.namespace || it.name !== j.name) continue;
    if (it.kind === 'preempted') {
      const taken = it.victims.map((v) => (v.namespace ? `${v.namespace}/${v.pod}` : 'a pod in another namespace')).join(', ');
      history.push(['preempted', `Preempted for it: ${taken} (${it.text})`, it.at]);
    } else if (it.kind === 'bind_failed') {
      history.push(['bind_failed', `Pod ${it.bind.pod}: ${it.text}${attemptsText(it.bind)}`, it.at]);
    }
  }
  const when = (e) => e[3] ?? e[2] ?? '';
  history.sort((a, b) => (when(a) < when(b) ? -1 : when(a) > when(b) ? 1 : 0));
  if (j.finishedAt) history.push(['finished', 'Finished', j.finishedAt]);
  // Milli, as the API gives GPU shares: a pod of an eighth GPU shows 0.125.
  const perPod = j.pods.length > 0 ? Math.round((j.gpus / Math.max(1, j.gangSize)) * 1000) / 1000 : 0;
  setPage(
    `Job ${j.namespace}/${j.name}`,
    h('p', {}, h('a', { href: '#/jobs' }, 'All jobs')),
    h('h1', {}, `Job ${j.namespace}/${j.name}`),
    h('div', { class: 'panel' }, h('dl', { class: 'facts' }, facts.map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]))),
    h('h2', {}, 'Pods'),
    j.pods.length
      ? h(
          'div',
          { class: 'scroll' },
          h(
            'table',
            { class: 'cards', id: 'pods' },
            h('caption', { class: 'sr' }, 'Pods of the job'),
            h('thead', {}, h('tr', {}, ['Pod', 'Node', 'GPUs', 'State'].map((x) => h('th', { scope: 'col', class: x === 'GPUs' ? 'n' : null }, x)))),
            h(
              'tbody',
              {},
              j.pods.map((p) =>
                h('tr', { 'data-pod': p.name }, h('td', { 'data-label': 'Pod' }, p.name), h('td', { 'data-label': 'Node', 'data-k': 'node' }, p.node || '-'), h('td', { class: 'n', 'data-label': 'GPUs' }, String(perPod)), h('td', { 'data-label': 'State' }, p.terminal ? 'finished' : p.gated ? 'gated' : p.node ? 'bound' : 'released, not bound')),
              ),
            ),
          ),
        )
      : h('p', { class: 'note' }, 'No pods in the cluster (the job finished, or this is its record).'),
    h('h2', {}, 'History'),
    h('ol', { class: 'timeline' }, history.map(([cls, text, at]) => h('li', { class: cls }, at ? h('time', { datetime: at }, fmtTime(at)) : null, text))),
  );
}

// ---- Activity ---------------------------------------------------------------------------

/** A failed bind kube-scheduler retried: how often, since when (`at` is the last one). */
const attemptsText = (b) => (b.attempts > 1 ? ` (${b.attempts} attempts since ${fmtTime(b.firstAt)})` : '');

const ACTIVITY_TAG = { released: 'released', preempted: 'preempted', denied: 'denied', bind_failed: 'bind failed' };

function activitySubject(it) {
  if (!it.namespace) return 'a pod in another namespace';
  if (it.kind === 'denied') return `${it.namespace}/${it.name}`;
  // A failed bind of a pod without a job names the pod, which has no page of its own.
  if (it.kind === 'bind_failed' && it.name === it.bind.pod) return `${it.namespace}/${it.name}`;
  return jobLink(it.namespace, it.name);
}

/** "(pod p, queue q)": the failed bind's pod when the subject is its job, and the queue. */
function activityContext(it) {
  const parts = [];
  if (it.bind && it.namespace && it.name !== it.bind.pod) parts.push(`pod ${it.bind.pod}`);
  if (it.queue) parts.push(`queue ${it.queue}`);
  return parts.length ? ` (${parts.join(', ')})` : '';
}

async function activityPage() {
  const { items } = await api('/ui/api/activity');
  const list = items.map((it) =>
    h(
      'li',
      { class: it.kind, 'data-kind': it.kind },
      h('time', { datetime: it.at }, fmtTime(it.at)),
      h('span', { class: `tag ${it.kind}` }, ACTIVITY_TAG[it.kind] ?? it.kind),
      ' ',
      activitySubject(it),
      activityContext(it),
      `: ${it.text}`,
      it.bind ? attemptsText(it.bind) : '',
      it.victims?.length
        ? h(
            'ul',
            { class: 'victims' },
            it.victims.map((v) => h('li', {}, v.namespace ? `${v.namespace}/${v.pod}` : 'a pod in another namespace', ` (queue ${v.queue}, ${plural(v.gpus, 'GPU')})`)),
          )
        : null,
    ),
  );
  setPage(
    'Activity',
    h('h1', {}, 'Activity'),
    h('p', { class: 'note' }, 'Releases, preemptions, admission denials and failed binds of the last 24 hours, newest first. A bind kube-scheduler retries on the same node and fails the same way is one entry, with its number of attempts.'),
    items.length ? h('ol', { class: 'timeline', id: 'activity' }, list) : h('p', { class: 'note' }, 'Nothing happened in the last 24 hours that you may see.'),
  );
}

// ---- start ------------------------------------------------------------------------------

$('signin').addEventListener('submit', (e) => {
  e.preventDefault();
  const token = $('token').value.trim();
  $('token').value = '';
  if (token) void signIn(token);
});
$('signout').addEventListener('click', () => signOut('Signed out.'));
window.addEventListener('hashchange', route);
if (state.token) void signIn(state.token);
else showSignIn();
