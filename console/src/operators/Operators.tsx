// Operator accounts (owners only): list, create, change role, disable and
// enable. The API keeps at least one active owner (409 `last_owner`).
import { useState } from 'preact/hooks';

import { api, ok, session } from '../api/client';
import type { OperatorOut, OperatorRole } from '../api/types';
import { can } from '../auth/permissions';
import { useStore } from '../store';
import { Dialog, ErrorBanner, Notice, PageHeader, StatusBadge } from '../ui/components';
import { formatDateTime } from '../ui/format';
import { ReasonDialog } from '../ui/ReasonDialog';
import { DataTable, Pager, useCursorPage, type Column } from '../ui/table';

/** Every operator role, in the API's own type: a new role fails the type check until listed. */
const ROLES = {
  owner: 'everything, and manages operators',
  admin: 'everything but operators',
  support: 'users, KYC, support; no money moves',
  finance: 'refunds, balance adjustments, coupons',
  field_tech: 'stations, ejects, the station link',
} as const satisfies Record<OperatorRole, string>;

const ROLE_NAMES = Object.keys(ROLES) as OperatorRole[];

type Change = { operator: OperatorOut; kind: 'role' | 'disable' | 'enable' };

export function Operators() {
  const me = useStore(session, (s) => s?.operator);
  const [role, setRole] = useState<OperatorRole | ''>('');
  const [creating, setCreating] = useState(false);
  const [change, setChange] = useState<Change | null>(null);
  const [newRole, setNewRole] = useState<OperatorRole>('support');
  const [notice, setNotice] = useState<string | null>(null);
  const page = useCursorPage(
    (cursor) => ok(api.GET('/api/admin/operators', { params: { query: { limit: 25, role: role || undefined, cursor } } })),
    [role],
  );
  const replace = (o: OperatorOut) => page.setRows((rows) => rows.map((r) => (r.id === o.id ? o : r)));

  const columns: Column<OperatorOut>[] = [
    { key: 'id', label: '#', class: 'num', sort: (o) => o.id, render: (o) => o.id },
    { key: 'email', label: 'Email', sort: (o) => o.email, render: (o) => o.email ?? '—' },
    { key: 'role', label: 'Role', sort: (o) => o.role, render: (o) => <span data-role={o.role}>{o.role}</span> },
    {
      key: 'state',
      label: 'State',
      sort: (o) => (o.disabled ? 1 : 0),
      render: (o) => (
        <>
          <StatusBadge status={o.disabled ? 'disabled' : 'active'} />
          {o.disabled_at ? <small class="muted"> since {formatDateTime(o.disabled_at)}</small> : null}
        </>
      ),
    },
    { key: 'created', label: 'Created', sort: (o) => o.created_at, render: (o) => formatDateTime(o.created_at) },
    {
      key: 'actions',
      label: 'Actions',
      render: (o) => (
        <span class="actions">
          {can(me, 'operators.role') ? (
            <button
              type="button"
              onClick={() => {
                setNewRole(o.role === 'support' ? 'admin' : 'support');
                setChange({ operator: o, kind: 'role' });
              }}
            >
              Change role…
            </button>
          ) : null}
          {o.disabled
            ? can(me, 'operators.enable') && (
                <button type="button" onClick={() => setChange({ operator: o, kind: 'enable' })}>
                  Enable…
                </button>
              )
            : can(me, 'operators.disable') && (
                <button type="button" class="danger" onClick={() => setChange({ operator: o, kind: 'disable' })}>
                  Disable…
                </button>
              )}
        </span>
      ),
    },
  ];

  return (
    <>
      <PageHeader title="Operators">
        <label class="inline">
          Role{' '}
          <select value={role} onChange={(e) => setRole(e.currentTarget.value as OperatorRole | '')}>
            <option value="">all</option>
            {ROLE_NAMES.map((r) => (
              <option key={r} value={r}>
                {r}
              </option>
            ))}
          </select>
        </label>
        {can(me, 'operators.create') ? (
          <button type="button" class="primary" onClick={() => setCreating(true)}>
            New operator…
          </button>
        ) : null}
      </PageHeader>
      {notice ? <Notice>{notice}</Notice> : null}
      <DataTable caption="Operators" columns={columns} rows={page.rows} rowKey={(o) => o.id} empty="No operators." />
      <Pager page={page} what="operators" />
      {creating ? (
        <CreateDialog
          onClose={() => setCreating(false)}
          onDone={(o) => {
            setCreating(false);
            setNotice(`${o.email} created as ${o.role}.`);
            page.reload();
          }}
        />
      ) : null}
      {change ? (
        <ReasonDialog
          title={`${change.kind === 'role' ? 'Change the role of' : change.kind === 'disable' ? 'Disable' : 'Enable'} ${change.operator.email}`}
          confirm={change.kind === 'role' ? 'Change role' : change.kind === 'disable' ? 'Disable' : 'Enable'}
          danger={change.kind === 'disable'}
          onClose={() => setChange(null)}
          onSubmit={async (reason) => {
            const path = { params: { path: { id: change.operator.id } } };
            const out =
              change.kind === 'role'
                ? await ok(api.POST('/api/admin/operators/{id}/role', { ...path, body: { role: newRole, reason } }))
                : change.kind === 'disable'
                  ? await ok(api.POST('/api/admin/operators/{id}/disable', { ...path, body: { reason } }))
                  : await ok(api.POST('/api/admin/operators/{id}/enable', { ...path, body: { reason } }));
            replace(out);
            setChange(null);
            setNotice(`${out.email}: ${change.kind === 'role' ? `now ${out.role}` : change.kind === 'disable' ? 'disabled (sessions ended)' : 'enabled'}.`);
          }}
        >
          {change.kind === 'role' ? (
            <label>
              New role (now {change.operator.role})
              <select value={newRole} onChange={(e) => setNewRole(e.currentTarget.value as OperatorRole)}>
                {ROLE_NAMES.map((r) => (
                  <option key={r} value={r}>
                    {r}: {ROLES[r]}
                  </option>
                ))}
              </select>
            </label>
          ) : change.kind === 'disable' ? (
            <p>Their sessions end at once and they cannot sign in until enabled.</p>
          ) : null}
        </ReasonDialog>
      ) : null}
    </>
  );
}

function CreateDialog({ onClose, onDone }: { onClose: () => void; onDone: (o: OperatorOut) => void }) {
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [role, setRole] = useState<OperatorRole>('support');
  const [reason, setReason] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      onDone(
        await ok(
          api.POST('/api/admin/operators', {
            body: { email: email.trim(), password, role, reason: reason.trim() || null },
          }),
        ),
      );
    } catch (failure) {
      setError(failure);
      setBusy(false);
    }
  };
  return (
    <Dialog title="New operator" onClose={onClose}>
      <form onSubmit={submit}>
        <label>
          Email
          <input type="email" required autoComplete="off" value={email} onInput={(e) => setEmail(e.currentTarget.value)} />
        </label>
        <label>
          Password (12 characters or more)
          <input
            type="password"
            required
            minLength={12}
            autoComplete="new-password"
            value={password}
            onInput={(e) => setPassword(e.currentTarget.value)}
          />
        </label>
        <label>
          Role
          <select value={role} onChange={(e) => setRole(e.currentTarget.value as OperatorRole)}>
            {ROLE_NAMES.map((r) => (
              <option key={r} value={r}>
                {r}: {ROLES[r]}
              </option>
            ))}
          </select>
        </label>
        <label>
          Reason (optional)
          <input value={reason} maxLength={500} onInput={(e) => setReason(e.currentTarget.value)} />
        </label>
        <ErrorBanner error={error} />
        <div class="dialog-actions">
          <button type="button" onClick={onClose} disabled={busy}>
            Cancel
          </button>
          <button type="submit" class="primary" disabled={busy}>
            Create
          </button>
        </div>
      </form>
    </Dialog>
  );
}
