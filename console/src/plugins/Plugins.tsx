// Every plugin with its build, state and call statistics. A plugin event on
// the live feed (e.g. a reload by another operator, or the file watcher)
// lists them again; operators reload plugins.toml from here.
import { useEffect, useState } from 'preact/hooks';

import { api, ok, session } from '../api/client';
import type { PluginOut, ReloadOut } from '../api/types';
import { can } from '../auth/permissions';
import { live } from '../live/events';
import { useStore } from '../store';
import { ErrorBanner, PageHeader, StatusBadge } from '../ui/components';
import { formatDateTime, formatMicros } from '../ui/format';
import { DataTable, type Column } from '../ui/table';

/** Call counts are not on the feed (they change with every call): refetched this often. */
const STATS_REFRESH_MS = 10_000;

const COLUMNS: Column<PluginOut>[] = [
  {
    key: 'name',
    label: 'Plugin',
    sort: (p) => p.name,
    render: (p) => (
      <>
        <strong>{p.name}</strong>
        <br />
        <small class="muted">{p.kind}</small>
      </>
    ),
  },
  { key: 'version', label: 'Version', sort: (p) => p.version, render: (p) => p.version ?? '—' },
  {
    key: 'sha256',
    label: 'sha256',
    render: (p) => (p.sha256 ? <code title={p.sha256}>{p.sha256.slice(0, 12)}…</code> : '—'),
  },
  { key: 'state', label: 'State', sort: (p) => p.status, render: (p) => <StatusBadge status={p.status} /> },
  {
    key: 'loaded',
    label: 'Loaded',
    sort: (p) => p.loaded_at,
    render: (p) => <span data-loaded-at={p.loaded_at ?? ''}>{formatDateTime(p.loaded_at)}</span>,
  },
  { key: 'calls', label: 'Calls', class: 'num', sort: (p) => p.calls, render: (p) => p.calls },
  { key: 'failures', label: 'Failures', class: 'num', sort: (p) => p.failures, render: (p) => p.failures },
  { key: 'p50', label: 'p50', class: 'num', sort: (p) => p.p50_us, render: (p) => formatMicros(p.p50_us) },
  { key: 'p99', label: 'p99', class: 'num', sort: (p) => p.p99_us, render: (p) => formatMicros(p.p99_us) },
  {
    key: 'error',
    label: 'Last error',
    render: (p) =>
      p.last_error ? (
        <span class="error-text" title={formatDateTime(p.last_error_at)}>
          {p.last_error}
        </span>
      ) : (
        '—'
      ),
  },
];

export function Plugins() {
  const operator = useStore(session, (s) => s?.operator);
  const feed = useStore(live, (l) => l.plugins);
  const [listed, setListed] = useState<PluginOut[]>([]);
  const [error, setError] = useState<unknown>(null);
  const [report, setReport] = useState<ReloadOut | null>(null);
  const [busy, setBusy] = useState(false);

  const refresh = () =>
    ok(api.GET('/api/admin/plugins'))
      .then((plugins) => {
        setListed(plugins);
        setError(null);
      })
      .catch(setError);

  // A plugin event on the feed (loaded, replaced, failed, removed): list again.
  useEffect(() => {
    void refresh();
  }, [feed]);
  useEffect(() => {
    const timer = setInterval(() => void refresh(), STATS_REFRESH_MS);
    return () => clearInterval(timer);
  }, []);
  const rows = [...listed].sort((a, b) => a.name.localeCompare(b.name));

  const reload = async () => {
    setBusy(true);
    setError(null);
    try {
      const result = await ok(api.POST('/api/admin/plugins/reload'));
      setReport(result);
      setListed(result.plugins);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };

  return (
    <>
      <PageHeader title="Plugins">
        {can(operator, 'plugins.reload') ? (
          <button type="button" class="primary" onClick={() => void reload()} disabled={busy}>
            {busy ? 'Reloading…' : 'Reload plugins.toml'}
          </button>
        ) : null}
      </PageHeader>
      <ErrorBanner error={error} />
      {report ? (
        <div class={`banner ${report.failed.length ? 'error' : 'ok'}`} role="status" data-reload-report>
          Reloaded: {report.loaded.length ? report.loaded.join(', ') : 'nothing changed'}
          {report.unchanged.length ? `; unchanged: ${report.unchanged.length}` : ''}
          {report.removed.length ? `; removed: ${report.removed.join(', ')}` : ''}
          {report.failed.map((f) => (
            <div key={f.name}>
              <strong>{f.name}</strong> failed: {f.error} (the previous version keeps serving)
            </div>
          ))}
        </div>
      ) : null}
      <DataTable caption="Plugins" columns={COLUMNS} rows={rows} rowKey={(p) => p.name} empty="No plugins configured." />
    </>
  );
}
