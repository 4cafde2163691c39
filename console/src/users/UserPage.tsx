// One app user: profile, KYC, balances, open rental, dues, last rentals,
// devices, referrals and notes; suspend, ban or reactivate with a reason;
// correct the wallet (NPR) or points with a reason; add an internal note.
import type { ComponentChildren } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { Link } from 'wouter-preact';

import { api, ok, session } from '../api/client';
import type { RentalBriefOut, UserDetailOut } from '../api/types';
import { can } from '../auth/permissions';
import { useStore } from '../store';
import { Dialog, ErrorBanner, Kpi, Loading, Notice, PageHeader, StatusBadge } from '../ui/components';
import { formatCount, formatDateTime, formatNpr, parseNpr } from '../ui/format';
import { idempotencyKey, ReasonDialog } from '../ui/ReasonDialog';
import { DataTable, type Column } from '../ui/table';
import { userName } from './Users';

type Action = 'suspend' | 'ban' | 'reactivate' | 'wallet' | 'points';

export function UserPage({ id }: { id: number }) {
  const operator = useStore(session, (s) => s?.operator);
  const [user, setUser] = useState<UserDetailOut | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [action, setAction] = useState<Action | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [generation, setGeneration] = useState(0);

  useEffect(() => {
    let current = true;
    ok(api.GET('/api/admin/users/{id}', { params: { path: { id } } }))
      .then((u) => current && (setUser(u), setError(null)))
      .catch((e: unknown) => current && setError(e));
    return () => {
      current = false;
    };
  }, [id, generation]);

  if (!user) return error ? <ErrorBanner error={error} /> : <Loading what="user" />;
  const reload = (message: string) => {
    setAction(null);
    setNotice(message);
    setGeneration((g) => g + 1);
  };
  const restricted = user.status === 'suspended';
  const banned = user.restriction === 'banned';
  const path = { params: { path: { id } } };

  return (
    <>
      <p>
        <Link href="/users">← Users</Link>
      </p>
      <PageHeader title={userName(user)}>
        {!restricted && user.status === 'active' && can(operator, 'users.suspend') ? (
          <button type="button" class="danger" onClick={() => setAction('suspend')}>
            Suspend…
          </button>
        ) : null}
        {!banned && user.status !== 'deleted' && can(operator, 'users.ban') ? (
          <button type="button" class="danger" onClick={() => setAction('ban')}>
            Ban…
          </button>
        ) : null}
        {restricted && can(operator, 'users.reactivate') && (!banned || can(operator, 'users.ban')) ? (
          <button type="button" onClick={() => setAction('reactivate')}>
            Reactivate…
          </button>
        ) : null}
        {can(operator, 'users.adjust_balance') ? (
          <button type="button" onClick={() => setAction('wallet')}>
            Adjust wallet…
          </button>
        ) : null}
        {can(operator, 'users.adjust_points') ? (
          <button type="button" onClick={() => setAction('points')}>
            Adjust points…
          </button>
        ) : null}
      </PageHeader>
      {notice ? <Notice>{notice}</Notice> : null}
      <ErrorBanner error={error} />
      {user.restriction_detail ? (
        <div class="banner warn" data-restriction={user.restriction_detail.kind}>
          <strong>{user.restriction_detail.kind}</strong> since {formatDateTime(user.restriction_detail.since)} by operator #
          {user.restriction_detail.operator_id}: {user.restriction_detail.reason}
        </div>
      ) : null}

      <div class="kpis">
        <Kpi id="wallet" label="Wallet" value={<span data-wallet-balance={user.wallet_balance_paisa}>{formatNpr(user.wallet_balance_paisa)}</span>} />
        <Kpi id="points" label="Points" value={formatCount(user.points_balance)} />
        <Kpi id="dues" label="Unpaid dues" value={formatNpr(user.unpaid_dues_paisa)} />
        <Kpi id="referrals" label="Referrals" value={formatCount(user.referrals)} />
      </div>

      <section class="section" aria-labelledby="profile">
        <h2 id="profile">Profile</h2>
        <dl class="facts">
          <Fact label="User id" value={`#${user.id}`} />
          <Fact label="Status" value={<StatusBadge status={user.restriction ?? user.status} />} />
          <Fact label="KYC" value={<StatusBadge status={user.kyc_status} />} />
          <Fact label="Full name" value={user.full_name} />
          <Fact label="Username" value={user.username} />
          <Fact label="Phone" value={user.phone} />
          <Fact label="Email" value={user.email} />
          <Fact label="Date of birth" value={user.date_of_birth} />
          <Fact label="Address" value={user.address} />
          <Fact label="Referral code" value={<code>{user.referral_code}</code>} />
          <Fact label="Registered" value={formatDateTime(user.created_at)} />
          <Fact label="Last sign-in" value={formatDateTime(user.last_login_at)} />
        </dl>
      </section>

      <section class="section" aria-labelledby="rentals">
        <h2 id="rentals">Rentals</h2>
        {user.open_rental ? (
          <p>
            Open rental: <code>{user.open_rental.code}</code> <StatusBadge status={user.open_rental.status} /> from{' '}
            {user.open_rental.station_sn ?? '—'}, due {formatDateTime(user.open_rental.due_at)}.
          </p>
        ) : (
          <p class="muted">No rental open.</p>
        )}
        <DataTable caption="Last rentals" columns={RENTAL_COLUMNS} rows={user.last_rentals} rowKey={(r) => r.id} empty="No rentals yet." />
      </section>

      <section class="section" aria-labelledby="devices">
        <h2 id="devices">Devices</h2>
        <DataTable
          caption="Devices"
          columns={[
            { key: 'device', label: 'Device', render: (d) => <code>{d.device_id}</code> },
            { key: 'platform', label: 'Platform', render: (d) => d.platform },
            { key: 'version', label: 'App version', render: (d) => d.app_version ?? '—' },
            { key: 'active', label: 'Active', render: (d) => (d.is_active ? 'yes' : 'no') },
            { key: 'updated', label: 'Updated', render: (d) => formatDateTime(d.updated_at) },
          ]}
          rows={user.devices}
          rowKey={(d) => d.device_id}
          empty="No devices registered."
        />
      </section>

      <Notes user={user} canAdd={can(operator, 'users.note')} onAdded={() => setGeneration((g) => g + 1)} />

      {action === 'suspend' || action === 'ban' || action === 'reactivate' ? (
        <ReasonDialog
          title={`${action === 'suspend' ? 'Suspend' : action === 'ban' ? 'Ban' : 'Reactivate'} ${userName(user)}`}
          confirm={action === 'suspend' ? 'Suspend' : action === 'ban' ? 'Ban' : 'Reactivate'}
          danger={action !== 'reactivate'}
          onClose={() => setAction(null)}
          onSubmit={async (reason) => {
            const body = { body: { reason }, ...path };
            if (action === 'suspend') await ok(api.POST('/api/admin/users/{id}/suspend', body));
            else if (action === 'ban') await ok(api.POST('/api/admin/users/{id}/ban', body));
            else await ok(api.POST('/api/admin/users/{id}/reactivate', body));
            reload(`${userName(user)}: ${action === 'reactivate' ? 'reactivated' : action === 'ban' ? 'banned' : 'suspended'}.`);
          }}
        >
          {action !== 'reactivate' ? (
            <p>Every session of this account ends at once and it cannot sign in until reactivated.</p>
          ) : null}
        </ReasonDialog>
      ) : null}
      {action === 'wallet' || action === 'points' ? (
        <AdjustDialog
          user={user}
          ledger={action}
          onClose={() => setAction(null)}
          onDone={(message) => reload(message)}
        />
      ) : null}
    </>
  );
}

function Fact({ label, value }: { label: string; value: ComponentChildren }) {
  return (
    <div>
      <dt>{label}</dt>
      <dd>{value === null || value === undefined || value === '' ? '—' : value}</dd>
    </div>
  );
}

const RENTAL_COLUMNS: Column<RentalBriefOut>[] = [
  { key: 'code', label: 'Rental', sort: (r) => r.id, render: (r) => <code>{r.code}</code> },
  { key: 'status', label: 'Status', sort: (r) => r.status, render: (r) => <StatusBadge status={r.status} /> },
  { key: 'station', label: 'Station', render: (r) => r.station_sn ?? '—' },
  { key: 'started', label: 'Started', sort: (r) => r.started_at, render: (r) => formatDateTime(r.started_at) },
  { key: 'returned', label: 'Returned', sort: (r) => r.returned_at, render: (r) => formatDateTime(r.returned_at) },
  { key: 'amount', label: 'Amount', class: 'num', sort: (r) => r.amount_paisa, render: (r) => formatNpr(r.amount_paisa) },
  { key: 'due', label: 'Unpaid', class: 'num', sort: (r) => r.unpaid_due_paisa, render: (r) => formatNpr(r.unpaid_due_paisa) },
];

/**
 * A wallet (NPR, typed with paisa and parsed with integer arithmetic) or
 * points correction. One idempotency key per dialog: pressing the button
 * again after a lost answer replays the first adjustment, never a second.
 */
function AdjustDialog({
  user,
  ledger,
  onClose,
  onDone,
}: {
  user: UserDetailOut;
  ledger: 'wallet' | 'points';
  onClose: () => void;
  onDone: (message: string) => void;
}) {
  const [direction, setDirection] = useState<'credit' | 'debit'>('credit');
  const [amount, setAmount] = useState('');
  const [reason, setReason] = useState('');
  const [key] = useState(idempotencyKey);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const wallet = ledger === 'wallet';
  const parsed = wallet ? parseNpr(amount) : /^\s*\d{1,7}\s*$/.test(amount) ? Number(amount) : null;

  const submit = async (e: Event) => {
    e.preventDefault();
    if (parsed === null || parsed === 0) {
      setError(new Error(wallet ? 'Type an amount in NPR, e.g. 150 or 150.50.' : 'Type a whole number of points.'));
      return;
    }
    setBusy(true);
    setError(null);
    const body = { amount: direction === 'credit' ? parsed : -parsed, reason: reason.trim(), idempotency_key: key };
    const path = { params: { path: { id: user.id } } };
    try {
      const out = wallet
        ? await ok(api.POST('/api/admin/users/{id}/wallet-adjustments', { ...path, body }))
        : await ok(api.POST('/api/admin/users/{id}/points-adjustments', { ...path, body }));
      onDone(
        wallet
          ? `Wallet ${direction === 'credit' ? 'credited' : 'debited'} ${formatNpr(parsed)}; balance now ${formatNpr(out.balance_after)}.`
          : `Points ${direction === 'credit' ? 'credited' : 'debited'} ${formatCount(parsed)}; balance now ${formatCount(out.balance_after)}.`,
      );
    } catch (failure) {
      setError(failure);
      setBusy(false);
    }
  };
  return (
    <Dialog title={`Adjust ${wallet ? 'wallet' : 'points'} of ${userName(user)}`} onClose={onClose}>
      <form onSubmit={submit}>
        <p>
          Now: {wallet ? formatNpr(user.wallet_balance_paisa) : `${formatCount(user.points_balance)} points`}.
        </p>
        <label>
          Direction
          <select value={direction} onChange={(e) => setDirection(e.currentTarget.value as 'credit' | 'debit')}>
            <option value="credit">Credit (add)</option>
            <option value="debit">Debit (take)</option>
          </select>
        </label>
        <label>
          {wallet ? 'Amount (NPR)' : 'Points'}
          <input
            required
            inputMode={wallet ? 'decimal' : 'numeric'}
            value={amount}
            onInput={(e) => setAmount(e.currentTarget.value)}
            placeholder={wallet ? '150.50' : '100'}
          />
        </label>
        <label>
          Reason (kept in the audit log)
          <textarea required maxLength={500} rows={3} value={reason} onInput={(e) => setReason(e.currentTarget.value)} />
        </label>
        <ErrorBanner error={error} />
        <div class="dialog-actions">
          <button type="button" onClick={onClose} disabled={busy}>
            Cancel
          </button>
          <button type="submit" class="primary" disabled={busy}>
            {direction === 'credit' ? 'Credit' : 'Debit'}
          </button>
        </div>
      </form>
    </Dialog>
  );
}

function Notes({ user, canAdd, onAdded }: { user: UserDetailOut; canAdd: boolean; onAdded: () => void }) {
  const [body, setBody] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const add = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await ok(api.POST('/api/admin/users/{id}/notes', { params: { path: { id: user.id } }, body: { body: body.trim() } }));
      setBody('');
      onAdded();
    } catch (failure) {
      setError(failure);
    } finally {
      setBusy(false);
    }
  };
  return (
    <section class="section" aria-labelledby="notes">
      <h2 id="notes">Internal notes</h2>
      {user.notes.length === 0 ? <p class="muted">No notes.</p> : null}
      <ul class="notes">
        {user.notes.map((n) => (
          <li key={n.id}>
            <small class="muted">
              {formatDateTime(n.created_at)} · {n.operator_email ?? `operator #${n.operator_id}`}
            </small>
            <div>{n.body}</div>
          </li>
        ))}
      </ul>
      {canAdd ? (
        <form onSubmit={add}>
          <label>
            New note
            <textarea required maxLength={2000} rows={2} value={body} onInput={(e) => setBody(e.currentTarget.value)} />
          </label>
          <ErrorBanner error={error} />
          <button type="submit" disabled={busy}>
            Add note
          </button>
        </form>
      ) : null}
    </section>
  );
}
