// The audit log: every operator change, newest first, filtered by operator,
// action, target and date; "Verify chain" recomputes the hash chain on the
// server and names any edited or deleted row.
import { useState } from 'preact/hooks';

import { api, ok, session } from '../api/client';
import type { AuditEntryOut, AuditVerification } from '../api/types';
import { can } from '../auth/permissions';
import { useStore } from '../store';
import { ErrorBanner, PageHeader } from '../ui/components';
import { formatDateTime, given } from '../ui/format';
import { DataTable, Pager, useCursorPage, type Column } from '../ui/table';

interface Filters {
  operator_id: string;
  action: string;
  target_type: string;
  target_id: string;
  from: string;
  to: string;
}

const EMPTY: Filters = { operator_id: '', action: '', target_type: '', target_id: '', from: '', to: '' };

/** before/after keep only the fields that changed; show them compactly. */
function Change({ value }: { value: unknown }) {
  if (value === null || value === undefined) return <span class="muted">—</span>;
  const text =
    typeof value === 'object' && !Array.isArray(value)
      ? Object.entries(value)
          .map(([k, v]) => `${k}: ${JSON.stringify(v)}`)
          .join('\n')
      : JSON.stringify(value);
  return <pre class="json">{text}</pre>;
}

export function AuditLog() {
  const operator = useStore(session, (s) => s?.operator);
  const [draft, setDraft] = useState<Filters>(EMPTY);
  const [filters, setFilters] = useState<Filters>(EMPTY);
  const [verification, setVerification] = useState<AuditVerification | null>(null);
  const [verifying, setVerifying] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const page = useCursorPage((cursor) => {
    const operatorId = /^\d+$/.test(filters.operator_id.trim()) ? Number(filters.operator_id.trim()) : undefined;
    return ok(
      api.GET('/api/admin/audit', {
        params: {
          query: {
            limit: 25,
            operator_id: operatorId,
            action: given(filters.action),
            target_type: given(filters.target_type),
            target_id: given(filters.target_id),
            from: given(filters.from),
            to: given(filters.to),
            cursor,
          },
        },
      }),
    );
  }, [filters]);
  const set = (key: keyof Filters) => (e: Event) =>
    setDraft({ ...draft, [key]: (e.currentTarget as HTMLInputElement).value });

  const verify = async () => {
    setVerifying(true);
    setError(null);
    try {
      setVerification(await ok(api.GET('/api/admin/audit/verify')));
    } catch (e) {
      setError(e);
    } finally {
      setVerifying(false);
    }
  };

  const columns: Column<AuditEntryOut>[] = [
    { key: 'id', label: '#', class: 'num', sort: (e) => e.id, render: (e) => e.id },
    { key: 'at', label: 'When', sort: (e) => e.at, render: (e) => formatDateTime(e.at) },
    {
      key: 'operator',
      label: 'Operator',
      sort: (e) => e.operator_email ?? e.operator_id,
      render: (e) => (
        <>
          {e.operator_email ?? `#${e.operator_id}`}
          <br />
          <small class="muted">{e.operator_role}</small>
        </>
      ),
    },
    { key: 'action', label: 'Action', sort: (e) => e.action, render: (e) => <code>{e.action}</code> },
    {
      key: 'target',
      label: 'Target',
      sort: (e) => `${e.target_type} ${e.target_id}`,
      render: (e) => `${e.target_type} ${e.target_id}`,
    },
    { key: 'reason', label: 'Reason', render: (e) => e.reason ?? <span class="muted">—</span> },
    { key: 'before', label: 'Before', render: (e) => <Change value={e.before} /> },
    { key: 'after', label: 'After', render: (e) => <Change value={e.after} /> },
    {
      key: 'request',
      label: 'Request',
      render: (e) => (
        <small class="muted">
          {e.request_id ?? '—'}
          {e.ip ? <> · {e.ip}</> : null}
        </small>
      ),
    },
  ];

  return (
    <>
      <PageHeader title="Audit log">
        {can(operator, 'audit.verify') ? (
          <button type="button" onClick={() => void verify()} disabled={verifying}>
            {verifying ? 'Verifying…' : 'Verify chain'}
          </button>
        ) : null}
      </PageHeader>
      <ErrorBanner error={error} />
      {verification ? (
        <div class={`banner ${verification.ok ? 'ok' : 'error'}`} role="status" data-verified={verification.ok ? 'ok' : 'broken'}>
          {verification.ok ? (
            <>
              Chain intact: {verification.rows_checked} rows checked. Head hash{' '}
              <span class="hash">{verification.head_hash ?? '—'}</span> (note it somewhere else: a rewritten chain shows as a
              different head).
            </>
          ) : (
            <>
              <strong>The chain is broken</strong> ({verification.rows_checked} rows checked):
              <ul>
                {verification.problems.map((p) => (
                  <li key={`${p.id}-${p.problem}`}>
                    row {p.id}: {p.problem.replaceAll('_', ' ')} — {p.detail}
                  </li>
                ))}
              </ul>
            </>
          )}
        </div>
      ) : null}
      <form
        class="filters"
        role="search"
        onSubmit={(e) => {
          e.preventDefault();
          setFilters(draft);
        }}
      >
        <label>
          Action
          <input value={draft.action} placeholder="user.wallet_adjust" onInput={set('action')} />
        </label>
        <label>
          Operator id
          <input inputMode="numeric" value={draft.operator_id} onInput={set('operator_id')} />
        </label>
        <label>
          Target type
          <input value={draft.target_type} placeholder="user" onInput={set('target_type')} />
        </label>
        <label>
          Target id
          <input value={draft.target_id} onInput={set('target_id')} />
        </label>
        <label>
          From (UTC day)
          <input type="date" value={draft.from} onInput={set('from')} />
        </label>
        <label>
          To (UTC day)
          <input type="date" value={draft.to} onInput={set('to')} />
        </label>
        <div class="filter-actions">
          <button type="submit" class="primary">
            Filter
          </button>
          <button
            type="button"
            onClick={() => {
              setDraft(EMPTY);
              setFilters(EMPTY);
            }}
          >
            Clear
          </button>
        </div>
      </form>
      <DataTable caption="Audit log" columns={columns} rows={page.rows} rowKey={(e) => e.id} empty="No audit rows match." />
      <Pager page={page} what="audit rows" />
    </>
  );
}
