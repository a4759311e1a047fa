// Jobs: start Update / Scan / Describe / Propose; live list with progress, pause/resume/cancel, errors.
import * as api from '../api.js';
import { h, icon, setChildren, emptyState } from '../ui/dom.js';
import { upsertJob } from '../lib/state.js';
import {
  formatProgress, formatRate, formatEta, formatJobKind, formatUnix, formatDuration, jobFraction, plural, formatPercent,
} from '../lib/format.js';

const LAUNCHERS = [
  ['update', 'Update', 'Scan the folders, describe new photos and propose locations, in a row. Start here.', true],
  ['scan', 'Scan', 'Find new, changed, moved and missing files and read their metadata.'],
  ['describe', 'Describe', 'Compute the visual fingerprint of photos that do not have one yet.'],
  ['propose', 'Propose', 'Look for places for untagged photos and check existing tags.'],
];
const STATE_LABEL = { queued: 'Queued', running: 'Running', paused: 'Paused', done: 'Done', failed: 'Failed', cancelled: 'Cancelled' };
const UNIT = { scan: 'files', describe: 'photos', propose: 'photos', write: 'files', undo: 'files' };
const ERR_SHOWN = 300;

export default function createJobs(app, root) {
  const rows = new Map(); // id → { el, parts }
  const launch = h(
    'div',
    { class: 'job-launchers' },
    LAUNCHERS.map(([kind, title, text, primary]) =>
      h(
        'div',
        { class: ['job-launch', primary && 'is-primary'] },
        h('div', { class: 'job-launch-text' }, h('strong', {}, title), h('p', { class: 'muted small' }, text)),
        h('button', { id: `job-start-${kind}`, class: ['btn', primary ? 'btn-primary' : ''], dataset: { kind }, onclick: (e) => start(kind, e.currentTarget) }, icon('play', 14), title),
      ),
    ),
  );
  const list = h('div', { class: 'job-list', id: 'job-list' });
  const listTitle = h('h2', { class: 'section-title' }, 'Activity');
  root.append(h('header', { class: 'view-header' }, h('h1', { class: 'view-title' }, 'Jobs')), h('div', { class: 'jobs-body' }, launch, listTitle, list));

  async function start(kind, button) {
    if (button) button.disabled = true;
    try {
      const job = await api.startJob(kind);
      if (job && job.id !== undefined) app.store.set({ jobs: upsertJob(app.store.get().jobs, job) });
      app.toast(`${formatJobKind(kind)} started`, { kind: 'success' });
    } catch (e) {
      app.toastError(e, `Could not start ${formatJobKind(kind)}`);
    } finally {
      if (button) button.disabled = false;
    }
  }

  async function control(fn, job, verb) {
    try {
      await fn(job.id);
    } catch (e) {
      app.toastError(e, `Could not ${verb} the job`);
    }
  }

  function buildRow(job) {
    const parts = {
      title: h('span', { class: 'job-title' }),
      state: h('span', { class: 'job-state chip' }),
      fill: h('span', { class: 'job-progress-fill' }),
      stage: h('span', { class: 'job-stage' }),
      count: h('span', { class: 'job-count' }),
      rate: h('span', { class: 'job-rate' }),
      eta: h('span', { class: 'job-eta' }),
      message: h('div', { class: 'job-message' }),
      errors: h('div', { class: 'job-errors-host' }),
      pause: h('button', { class: 'btn btn-small btn-ghost job-pause', title: 'Pause', onclick: () => control(api.pauseJob, job, 'pause') }, icon('pause', 14), 'Pause'),
      resume: h('button', { class: 'btn btn-small job-resume', title: 'Resume', onclick: () => control(api.resumeJob, job, 'resume') }, icon('play', 14), 'Resume'),
      cancel: h('button', { class: 'btn btn-small btn-danger-ghost job-cancel', title: 'Cancel', onclick: () => control(api.cancelJob, job, 'cancel') }, icon('stop', 14), 'Cancel'),
      errCount: -1,
    };
    parts.bar = h('div', { class: 'job-progress', role: 'progressbar', 'aria-valuemin': '0', 'aria-valuemax': '100' }, parts.fill);
    const el = h(
      'div',
      { class: 'job', dataset: { id: job.id } },
      h('div', { class: 'job-top' }, parts.title, parts.state, h('span', { class: 'spacer' }), parts.pause, parts.resume, parts.cancel),
      parts.bar,
      h('div', { class: 'job-meta' }, parts.stage, parts.count, parts.rate, parts.eta),
      parts.message,
      parts.errors,
    );
    return { el, parts, job };
  }

  function updateRow(r, job) {
    const p = r.parts;
    r.job = job;
    r.el.dataset.state = job.state;
    p.title.textContent = job.title || formatJobKind(job.kind);
    p.state.textContent = STATE_LABEL[job.state] || job.state;
    p.state.className = `job-state chip state-${job.state}`;
    const frac = jobFraction(job);
    const live = job.state === 'running' || job.state === 'queued';
    p.fill.classList.toggle('is-indeterminate', frac === null && live);
    p.fill.style.width = frac === null ? (live ? '35%' : '0%') : `${(frac * 100).toFixed(1)}%`;
    if (frac !== null) p.bar.setAttribute('aria-valuenow', String(Math.round(frac * 100)));
    else p.bar.removeAttribute('aria-valuenow');
    p.stage.textContent = job.stage || '';
    p.count.textContent = `${formatProgress(job.done, job.total)}${frac !== null && job.state !== 'done' ? ` · ${formatPercent(frac)}` : ''}`;
    p.rate.textContent = job.state === 'running' && job.ratePerS ? formatRate(job.ratePerS, UNIT[job.kind] || '') : '';
    if (job.state === 'running' && job.etaS) p.eta.textContent = formatEta(job.etaS);
    else if (job.finishedAt && job.startedAt) p.eta.textContent = `took ${formatDuration(job.finishedAt - job.startedAt)} · ${formatUnix(job.finishedAt)}`;
    else if (job.finishedAt) p.eta.textContent = formatUnix(job.finishedAt);
    else p.eta.textContent = '';
    p.message.textContent = job.message || '';
    p.message.hidden = !job.message;
    p.message.classList.toggle('is-error', job.state === 'failed');
    p.pause.hidden = job.state !== 'running';
    // A failed job runs again only when the user asks (Retry); it is never resumed at start.
    p.resume.hidden = !['paused', 'failed'].includes(job.state);
    p.resume.lastChild.textContent = job.state === 'failed' ? 'Retry' : 'Resume';
    p.resume.title = job.state === 'failed' ? 'Retry' : 'Resume';
    p.cancel.hidden = !['running', 'paused', 'queued'].includes(job.state);
    const errs = Array.isArray(job.errors) ? job.errors : [];
    if (errs.length !== p.errCount) {
      const wasOpen = p.errors.querySelector('details')?.open;
      p.errCount = errs.length;
      if (!errs.length) setChildren(p.errors);
      else {
        setChildren(
          p.errors,
          h(
            'details',
            { class: 'job-errors', open: wasOpen || null },
            h('summary', {}, `${plural(errs.length, 'file')} with errors`),
            h(
              'ul',
              { class: 'job-error-list' },
              errs.slice(0, ERR_SHOWN).map((e) => h('li', {}, h('code', { class: 'err-path', title: e.path }, e.path), h('span', { class: 'err-reason' }, e.reason))),
              errs.length > ERR_SHOWN ? h('li', { class: 'muted' }, `and ${plural(errs.length - ERR_SHOWN, 'more file')}`) : null,
            ),
          ),
        );
      }
    }
  }

  function render() {
    const jobs = app.store.get().jobs || [];
    if (!jobs.length) {
      rows.clear();
      listTitle.hidden = true;
      setChildren(
        list,
        emptyState({
          icon: 'jobs',
          title: 'No jobs yet',
          body: 'Start with Update: it scans your folders, describes new photos and proposes locations. Progress shows here and in the status bar.',
          className: 'empty-compact',
        }),
      );
      return;
    }
    listTitle.hidden = false;
    const seen = new Set();
    let prev = null;
    for (const job of jobs) {
      seen.add(job.id);
      let r = rows.get(job.id);
      if (!r) {
        r = buildRow(job);
        rows.set(job.id, r);
      }
      updateRow(r, job);
      // Keep DOM order = newest first, moving nodes only when needed.
      const want = prev ? prev.nextSibling : list.firstChild;
      if (want !== r.el) list.insertBefore(r.el, want);
      prev = r.el;
    }
    for (const [id, r] of rows) {
      if (!seen.has(id)) {
        r.el.remove();
        rows.delete(id);
      }
    }
    for (const c of [...list.children]) if (!c.classList.contains('job')) c.remove();
  }

  let raf = 0;
  app.store.subscribe((s, changed) => {
    if (!changed.includes('jobs') || raf) return;
    raf = requestAnimationFrame(() => {
      raf = 0;
      render();
    });
  });

  async function reload() {
    try {
      const jobs = await api.jobs();
      if (Array.isArray(jobs)) app.store.set({ jobs });
    } catch (e) {
      app.toastError(e, 'Could not load jobs');
    }
  }

  render();
  return {
    show() {
      reload();
      render();
    },
    hide() {},
    refresh() {},
    onKey() {
      return false;
    },
  };
}
