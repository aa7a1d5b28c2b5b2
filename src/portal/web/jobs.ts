/// <reference lib="dom" />
// The hub's jobs: import/export of the identity registry (service REST `GET /jobs`) and scheduled
// device jobs (`/jobs/v2/query`), with their progress, refreshed while any is running.
import { h, button, table } from './dom.js';
import { call, describe } from './api.js';
import type { Route } from './nav.js';

interface BulkJob {
  jobId: string;
  type: string;
  status: string;
  progress?: number;
  startTimeUtc?: string;
  endTimeUtc?: string;
  failureReason?: string;
}

interface DeviceJob {
  jobId: string;
  type: string;
  status: string;
  startTime?: string;
  endTime?: string;
  queryCondition?: string;
  deviceJobStatistics?: { deviceCount: number; succeededCount: number; failedCount: number; runningCount: number; pendingCount: number };
}

const RUNNING = new Set(['enqueued', 'queued', 'running', 'scheduled']);

async function jobs(main: HTMLElement): Promise<void> {
  const bulk = h('div', { id: 'import-export-jobs' });
  const scheduled = h('div', { id: 'scheduled-jobs' });
  const status = h('p', { class: 'muted', role: 'status' });
  let timer: ReturnType<typeof setTimeout> | undefined;
  let shown = true;
  const progress = (j: BulkJob) => {
    const v = Math.max(0, Math.min(100, j.progress ?? 0));
    return h('span', {}, h('progress', { max: '100', value: String(v), 'aria-label': `Job ${j.jobId} progress` }), ` ${v}%`);
  };
  const fill = async () => {
    let running = false;
    try {
      const list = (await call<BulkJob[]>('hub', 'GET', '/jobs')).body ?? [];
      running ||= list.some((j) => RUNNING.has(j.status));
      bulk.replaceChildren(list.length
        ? table(['Job ID', 'Type', 'Status', 'Progress', 'Start time', 'End time', 'Failure reason'], list.map((j) => [j.jobId, j.type, j.status, progress(j), j.startTimeUtc ?? '', j.endTimeUtc ?? '', j.failureReason ?? '']))
        : h('p', { class: 'muted' }, 'No import or export jobs.'));
    } catch (e) {
      bulk.replaceChildren(h('p', { class: 'error', role: 'alert' }, describe(e)));
    }
    try {
      const list = (await call<DeviceJob[]>('hub', 'GET', '/jobs/v2/query')).body ?? [];
      running ||= list.some((j) => RUNNING.has(j.status));
      scheduled.replaceChildren(list.length
        ? table(['Job ID', 'Type', 'Status', 'Devices (succeeded / failed / running / pending)', 'Start time', 'End time'], list.map((j) => {
            const s = j.deviceJobStatistics;
            return [j.jobId, j.type, j.status, s ? `${s.deviceCount} (${s.succeededCount} / ${s.failedCount} / ${s.runningCount} / ${s.pendingCount})` : '', j.startTime ?? '', j.endTime ?? ''];
          }))
        : h('p', { class: 'muted' }, 'No scheduled jobs.'));
    } catch (e) {
      scheduled.replaceChildren(h('p', { class: 'error', role: 'alert' }, describe(e)));
    }
    status.textContent = running ? 'Refreshing while jobs run…' : `Updated ${new Date().toLocaleTimeString()}.`;
    clearTimeout(timer);
    if (running && shown) timer = setTimeout(() => void fill(), 1000);
  };
  main.append(h('h1', {}, 'Jobs'), h('div', { class: 'toolbar' }, button('Refresh', () => fill())), status,
    h('h2', {}, 'Import and export jobs'), bulk, h('h2', {}, 'Scheduled jobs'), scheduled);
  window.addEventListener('hashchange', () => {
    shown = false;
    clearTimeout(timer);
  }, { once: true });
  await fill();
}

export const jobsRoutes: Route[] = [{ pattern: /^hub\/jobs$/, page: jobs, needs: 'hub' }];
