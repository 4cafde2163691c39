// Plugin releases, per plugins.toml slot: every kept release (state, sha256,
// signature, created), uploading a build (.wasm + config + optional
// signature; the server checks it and keeps it staged or records why it was
// rejected), promoting one to serve, and rolling back.
import { useEffect, useState } from 'preact/hooks';

import { ApiFailure, api, ok, session } from '../api/client';
import type { PluginOut, ReleaseOut } from '../api/types';
import { can } from '../auth/permissions';
import { useStore } from '../store';
import { Dialog, ErrorBanner, Loading, Notice, PageHeader, StatusBadge } from '../ui/components';
import { formatCount, formatDateTime } from '../ui/format';
import { DataTable, type Column } from '../ui/table';

export function Releases() {
  const operator = useStore(session, (s) => s?.operator);
  const [plugins, setPlugins] = useState<PluginOut[] | null>(null);
  const [name, setName] = useState('');
  const [releases, setReleases] = useState<ReleaseOut[] | null>(null);
  const [generation, setGeneration] = useState(0);
  const [error, setError] = useState<unknown>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [uploading, setUploading] = useState(false);
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    ok(api.GET('/api/admin/plugins'))
      .then((list) => {
        setPlugins(list);
        setName((current) => current || list[0]?.name || '');
      })
      .catch(setError);
  }, [generation]);

  useEffect(() => {
    if (!name) return;
    let current = true;
    setReleases(null);
    ok(api.GET('/api/admin/plugins/{name}/releases', { params: { path: { name } } }))
      .then((list) => current && setReleases(list))
      .catch((e: unknown) => current && setError(e));
    return () => {
      current = false;
    };
  }, [name, generation]);

  const serving = plugins?.find((p) => p.name === name);
  const act = async (what: string, call: () => Promise<{ plugin: PluginOut }>) => {
    setBusy(true);
    setError(null);
    try {
      const slot = await call();
      setNotice(`${what}: ${slot.plugin.name} now serves ${slot.plugin.version ?? '?'} (${slot.plugin.source}).`);
      setGeneration((g) => g + 1);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  const promote = (r: ReleaseOut) =>
    act(`Release #${r.id} promoted`, () =>
      ok(api.POST('/api/admin/plugins/{name}/releases/{id}/promote', { params: { path: { name, id: r.id } } })),
    );
  const rollback = (body: { release_id?: number; file?: boolean }, what: string) =>
    act(what, () => ok(api.POST('/api/admin/plugins/{name}/rollback', { params: { path: { name } }, body })));

  const columns: Column<ReleaseOut>[] = [
    { key: 'id', label: '#', class: 'num', sort: (r) => r.id, render: (r) => r.id },
    {
      key: 'state',
      label: 'State',
      sort: (r) => r.state,
      render: (r) => (
        <>
          <StatusBadge status={r.state} />
          {r.reason ? (
            <div class="error-text" data-rejected-reason>
              {r.reason}
            </div>
          ) : null}
        </>
      ),
    },
    {
      key: 'version',
      label: 'Build',
      sort: (r) => r.version,
      render: (r) => (
        <>
          {r.plugin_name ?? '—'} {r.version ?? ''}
          {r.contract ? <small class="muted"> ({r.contract})</small> : null}
          <br />
          <small class="muted">{formatCount(r.size_bytes)} bytes</small>
        </>
      ),
    },
    { key: 'sha', label: 'sha256', render: (r) => <span class="hash">{r.sha256}</span> },
    {
      key: 'signature',
      label: 'Signature',
      render: (r) =>
        r.signed_by ? (
          <>
            signed by <span class="hash">{r.signed_by.slice(0, 16)}…</span>
          </>
        ) : r.signature ? (
          'signed (no trusted key)'
        ) : (
          <span class="muted">unsigned</span>
        ),
    },
    {
      key: 'config',
      label: 'Config',
      render: (r) =>
        Object.keys(r.config).length ? <pre class="json">{Object.entries(r.config).map(([k, v]) => `${k} = ${v}`).join('\n')}</pre> : '—',
    },
    { key: 'created', label: 'Created', sort: (r) => r.created_at, render: (r) => formatDateTime(r.created_at) },
    {
      key: 'actions',
      label: 'Actions',
      render: (r) => (
        <span class="actions">
          {r.state === 'staged' && can(operator, 'releases.promote') ? (
            <button type="button" class="primary" disabled={busy} onClick={() => void promote(r)}>
              Promote
            </button>
          ) : null}
          {r.state === 'retired' && can(operator, 'releases.rollback') ? (
            <button type="button" disabled={busy} onClick={() => void rollback({ release_id: r.id }, `Rolled back to #${r.id}`)}>
              Roll back to this
            </button>
          ) : null}
        </span>
      ),
    },
  ];

  return (
    <>
      <PageHeader title="Plugin releases">
        <label class="inline">
          Plugin{' '}
          <select value={name} onChange={(e) => setName(e.currentTarget.value)}>
            {(plugins ?? []).map((p) => (
              <option key={p.name} value={p.name}>
                {p.name}
              </option>
            ))}
          </select>
        </label>
        {name && can(operator, 'releases.upload') ? (
          <button type="button" class="primary" onClick={() => setUploading(true)}>
            Upload release…
          </button>
        ) : null}
      </PageHeader>
      {notice ? <Notice>{notice}</Notice> : null}
      <ErrorBanner error={error} />
      {serving ? (
        <p data-serving={serving.source}>
          Serving now: <strong>{serving.version ?? '?'}</strong> from{' '}
          {serving.source === 'release' ? `release #${serving.release_id ?? '?'}` : `the file ${serving.path}`}, loaded{' '}
          {formatDateTime(serving.loaded_at)}. <StatusBadge status={serving.status} />
          {can(operator, 'releases.rollback') ? (
            <span class="actions">
              {' '}
              <button type="button" disabled={busy} onClick={() => void rollback({}, 'Rolled back')}>
                Roll back
              </button>
              <button type="button" disabled={busy} onClick={() => void rollback({ file: true }, 'Back to the file')}>
                Serve the plugins.toml file
              </button>
            </span>
          ) : null}
        </p>
      ) : null}
      {releases === null ? (
        name ? <Loading what="releases" /> : null
      ) : (
        <DataTable caption={`Releases of ${name}`} columns={columns} rows={releases} rowKey={(r) => r.id} empty="No releases uploaded: the plugins.toml file serves." />
      )}
      {uploading ? (
        <UploadDialog
          name={name}
          onClose={() => setUploading(false)}
          onDone={(message) => {
            setUploading(false);
            setNotice(message);
            setGeneration((g) => g + 1);
          }}
        />
      ) : null}
    </>
  );
}

function UploadDialog({ name, onClose, onDone }: { name: string; onClose: () => void; onDone: (message: string) => void }) {
  const [file, setFile] = useState<File | null>(null);
  const [config, setConfig] = useState('');
  const [signature, setSignature] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const submit = async (e: Event) => {
    e.preventDefault();
    if (!file) return;
    setBusy(true);
    setError(null);
    const form = new FormData();
    form.append('wasm', file, file.name);
    if (config.trim()) form.append('config', config);
    if (signature.trim()) form.append('signature', signature.trim());
    try {
      const release = await ok(
        // openapi-fetch sends a FormData body as multipart, boundary and all.
        api.POST('/api/admin/plugins/{name}/releases', { params: { path: { name } }, body: form as never }),
      );
      onDone(`Release #${release.id} (${release.version ?? '?'}) checked and staged; promote it to serve.`);
    } catch (failure) {
      if (failure instanceof ApiFailure && failure.code === 'release_rejected') {
        onDone(`The build was rejected and recorded: ${failure.message}`);
        return;
      }
      setError(failure);
      setBusy(false);
    }
  };
  return (
    <Dialog title={`Upload a release of ${name}`} onClose={onClose}>
      <form onSubmit={submit}>
        <label>
          Component (.wasm)
          <input type="file" required accept=".wasm,application/wasm" onChange={(e) => setFile(e.currentTarget.files?.[0] ?? null)} />
        </label>
        <label>
          Config (TOML lines or a JSON object; optional)
          <textarea rows={4} value={config} placeholder={'overdue_paisa_per_hour = 500'} onInput={(e) => setConfig(e.currentTarget.value)} />
        </label>
        <label>
          Signature (hex ed25519 over the sha256; optional)
          <input value={signature} onInput={(e) => setSignature(e.currentTarget.value)} />
        </label>
        <ErrorBanner error={error} />
        <div class="dialog-actions">
          <button type="button" onClick={onClose} disabled={busy}>
            Cancel
          </button>
          <button type="submit" class="primary" disabled={busy || !file}>
            {busy ? 'Checking…' : 'Upload and check'}
          </button>
        </div>
      </form>
    </Dialog>
  );
}
