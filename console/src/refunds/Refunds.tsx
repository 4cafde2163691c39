// Refund requests: approve (the gateway or wallet pays back) or reject with a
// reason the user sees.
import { useState } from 'preact/hooks';

import { api, ok } from '../api/client';
import type { RefundOut } from '../api/types';
import { Dialog, ErrorBanner, Notice, PageHeader, StatusBadge } from '../ui/components';
import { formatDateTime, formatNpr } from '../ui/format';
import { DataTable, Pager, useCursorPage, type Column } from '../ui/table';

const STATUSES = ['pending', 'approved', 'processed', 'rejected', 'failed', ''] as const;
type StatusFilter = (typeof STATUSES)[number];
type Decision = { refund: RefundOut; kind: 'approve' | 'reject' };

export function Refunds() {
  const [status, setStatus] = useState<StatusFilter>('pending');
  const [deciding, setDeciding] = useState<Decision | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const page = useCursorPage(
    (cursor) =>
      ok(
        api.GET('/api/admin/refunds', {
          params: { query: { limit: 25, ...(status ? { status } : {}), ...(cursor ? { cursor } : {}) } },
        }),
      ),
    [status],
  );

  const columns: Column<RefundOut>[] = [
    { key: 'id', label: '#', class: 'num', sort: (r) => r.id, render: (r) => r.id },
    { key: 'user', label: 'User', class: 'num', sort: (r) => r.user_id, render: (r) => `#${r.user_id}` },
    {
      key: 'amount',
      label: 'Amount',
      class: 'num',
      sort: (r) => r.amount_paisa,
      render: (r) => formatNpr(r.amount_paisa),
    },
    {
      key: 'what',
      label: 'Payment',
      sort: (r) => r.transaction_kind,
      render: (r) => (
        <>
          {r.transaction_kind.replaceAll('_', ' ')}
          {r.gateway ? ` via ${r.gateway}` : ''}
          <br />
          <small class="muted">{r.transaction_reference}</small>
        </>
      ),
    },
    { key: 'reason', label: 'Reason', render: (r) => r.reason },
    {
      key: 'status',
      label: 'Status',
      sort: (r) => r.status,
      render: (r) => (
        <>
          <StatusBadge status={r.status} />
          {r.review_note ? <small class="muted"> {r.review_note}</small> : null}
          {r.last_error ? <small class="error-text"> {r.last_error}</small> : null}
        </>
      ),
    },
    { key: 'created', label: 'Asked', sort: (r) => r.created_at, render: (r) => formatDateTime(r.created_at) },
    {
      key: 'actions',
      label: 'Decision',
      render: (r) =>
        r.status === 'pending' ? (
          <span class="actions">
            <button type="button" class="primary" onClick={() => setDeciding({ refund: r, kind: 'approve' })}>
              Approve…
            </button>
            <button type="button" class="danger" onClick={() => setDeciding({ refund: r, kind: 'reject' })}>
              Reject…
            </button>
          </span>
        ) : null,
    },
  ];

  return (
    <>
      <PageHeader title="Refunds">
        <label class="inline">
          Show{' '}
          <select value={status} onChange={(e) => setStatus(e.currentTarget.value as StatusFilter)}>
            {STATUSES.map((s) => (
              <option key={s} value={s}>
                {s || 'all'}
              </option>
            ))}
          </select>
        </label>
      </PageHeader>
      {notice ? <Notice>{notice}</Notice> : null}
      <DataTable caption="Refund requests" columns={columns} rows={page.rows} rowKey={(r) => r.id} empty="No refund requests." />
      <Pager page={page} what="refunds" />
      {deciding ? (
        <DecisionDialog
          decision={deciding}
          onClose={() => setDeciding(null)}
          onDone={(refund) => {
            setDeciding(null);
            setNotice(`Refund #${refund.id}: ${refund.status}.`);
            page.setRows((rows) => rows.map((r) => (r.id === refund.id ? refund : r)));
          }}
        />
      ) : null}
    </>
  );
}

function DecisionDialog({
  decision,
  onClose,
  onDone,
}: {
  decision: Decision;
  onClose: () => void;
  onDone: (refund: RefundOut) => void;
}) {
  const { refund, kind } = decision;
  const [text, setText] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    const path = { params: { path: { id: refund.id } } };
    try {
      onDone(
        kind === 'approve'
          ? await ok(api.POST('/api/admin/refunds/{id}/approve', { ...path, body: { note: text.trim() || null } }))
          : await ok(api.POST('/api/admin/refunds/{id}/reject', { ...path, body: { reason: text.trim() } })),
      );
    } catch (failure) {
      setError(failure);
      setBusy(false);
    }
  };
  return (
    <Dialog title={`${kind === 'approve' ? 'Approve' : 'Reject'} refund #${refund.id}`} onClose={onClose}>
      <form onSubmit={submit}>
        <p>
          {formatNpr(refund.amount_paisa)} to user #{refund.user_id} for {refund.transaction_kind.replaceAll('_', ' ')}{' '}
          {refund.transaction_reference}.
        </p>
        <label>
          {kind === 'approve' ? 'Note (optional)' : 'Reason (the user sees it)'}
          <textarea
            required={kind === 'reject'}
            maxLength={500}
            rows={3}
            value={text}
            onInput={(e) => setText(e.currentTarget.value)}
          />
        </label>
        <ErrorBanner error={error} />
        <div class="dialog-actions">
          <button type="button" onClick={onClose} disabled={busy}>
            Cancel
          </button>
          <button type="submit" class={kind === 'approve' ? 'primary' : 'danger'} disabled={busy}>
            {kind === 'approve' ? 'Approve and pay back' : 'Reject'}
          </button>
        </div>
      </form>
    </Dialog>
  );
}
