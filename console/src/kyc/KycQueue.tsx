// Identity documents waiting for a decision: the images beside what the user
// typed, approve or reject with a reason the user sees.
import { useEffect, useState } from 'preact/hooks';

import { api, ok, privateFileUrl } from '../api/client';
import type { AdminKycOut } from '../api/types';
import { Dialog, ErrorBanner, Loading, Notice, PageHeader, StatusBadge } from '../ui/components';
import { formatDateTime } from '../ui/format';
import { Pager, useCursorPage } from '../ui/table';

const STATUSES = ['pending', 'approved', 'rejected', ''] as const;
type StatusFilter = (typeof STATUSES)[number];

export function KycQueue() {
  const [status, setStatus] = useState<StatusFilter>('pending');
  const [notice, setNotice] = useState<string | null>(null);
  const [rejecting, setRejecting] = useState<AdminKycOut | null>(null);
  const page = useCursorPage(
    (cursor) =>
      ok(
        api.GET('/api/admin/kyc', {
          params: { query: { limit: 10, ...(status ? { status } : {}), ...(cursor ? { cursor } : {}) } },
        }),
      ),
    [status],
  );

  const decided = (kyc: AdminKycOut, message: string) => {
    setNotice(message);
    // Out of the queue when it was the queue being shown; updated otherwise.
    page.setRows((rows) => (status === 'pending' ? rows.filter((r) => r.id !== kyc.id) : rows.map((r) => (r.id === kyc.id ? kyc : r))));
  };

  return (
    <>
      <PageHeader title="KYC queue">
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
      {page.rows.length === 0 && !page.loading ? <p class="muted">Nothing to review.</p> : null}
      <ol class="cards" aria-label="Submissions">
        {page.rows.map((kyc) => (
          <KycCard
            key={kyc.id}
            kyc={kyc}
            onApproved={(k) => decided(k, `Submission #${k.id} approved.`)}
            onReject={() => setRejecting(kyc)}
          />
        ))}
      </ol>
      <Pager page={page} what="submissions" />
      {rejecting ? (
        <RejectDialog
          kyc={rejecting}
          onClose={() => setRejecting(null)}
          onRejected={(k) => {
            setRejecting(null);
            decided(k, `Submission #${k.id} rejected.`);
          }}
        />
      ) : null}
    </>
  );
}

function KycCard({
  kyc,
  onApproved,
  onReject,
}: {
  kyc: AdminKycOut;
  onApproved: (kyc: AdminKycOut) => void;
  onReject: () => void;
}) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const approve = async () => {
    setBusy(true);
    setError(null);
    try {
      onApproved(await ok(api.POST('/api/admin/kyc/{id}/approve', { params: { path: { id: kyc.id } } })));
    } catch (e) {
      setError(e);
      setBusy(false);
    }
  };
  return (
    <li class="card kyc" data-kyc={kyc.id} aria-labelledby={`kyc-${kyc.id}`}>
      <div class="documents">
        <DocumentImage url={kyc.front.url} label="Front" />
        {kyc.back ? <DocumentImage url={kyc.back.url} label="Back" /> : null}
      </div>
      <div class="submitted">
        <h2 id={`kyc-${kyc.id}`}>
          Submission #{kyc.id} <StatusBadge status={kyc.status} />
        </h2>
        <dl class="facts">
          <div>
            <dt>User</dt>
            <dd>
              #{kyc.user_id} {kyc.user_phone ?? ''}
            </dd>
          </div>
          <div>
            <dt>Document</dt>
            <dd>{kyc.document_type.replaceAll('_', ' ')}</dd>
          </div>
          <div>
            <dt>Number</dt>
            <dd>
              <code>{kyc.document_number}</code>
            </dd>
          </div>
          <div>
            <dt>Submitted</dt>
            <dd>{formatDateTime(kyc.submitted_at)}</dd>
          </div>
          {kyc.reviewed_at ? (
            <div>
              <dt>Reviewed</dt>
              <dd>{formatDateTime(kyc.reviewed_at)}</dd>
            </div>
          ) : null}
          {kyc.rejection_reason ? (
            <div>
              <dt>Reason given</dt>
              <dd>{kyc.rejection_reason}</dd>
            </div>
          ) : null}
        </dl>
        <ErrorBanner error={error} />
        {kyc.status === 'pending' ? (
          <div class="actions">
            <button type="button" class="primary" onClick={() => void approve()} disabled={busy}>
              Approve
            </button>
            <button type="button" class="danger" onClick={onReject} disabled={busy}>
              Reject…
            </button>
          </div>
        ) : null}
      </div>
    </li>
  );
}

/** Identity documents are private: fetched with the operator's token, shown from memory. */
function DocumentImage({ url, label }: { url: string; label: string }) {
  const [src, setSrc] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    let objectUrl: string | null = null;
    let current = true;
    privateFileUrl(url)
      .then((u) => {
        objectUrl = u;
        if (current) setSrc(u);
        else URL.revokeObjectURL(u);
      })
      .catch((e: unknown) => current && setError(e));
    return () => {
      current = false;
      if (objectUrl) URL.revokeObjectURL(objectUrl);
    };
  }, [url]);
  return (
    <figure class="document">
      {src ? <img src={src} alt={`${label} of the document`} /> : error ? <ErrorBanner error={error} /> : <Loading what={label.toLowerCase()} />}
      <figcaption>{label}</figcaption>
    </figure>
  );
}

function RejectDialog({
  kyc,
  onClose,
  onRejected,
}: {
  kyc: AdminKycOut;
  onClose: () => void;
  onRejected: (kyc: AdminKycOut) => void;
}) {
  const [reason, setReason] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      onRejected(
        await ok(api.POST('/api/admin/kyc/{id}/reject', { params: { path: { id: kyc.id } }, body: { reason: reason.trim() } })),
      );
    } catch (failure) {
      setError(failure);
      setBusy(false);
    }
  };
  return (
    <Dialog title={`Reject submission #${kyc.id}`} onClose={onClose}>
      <form onSubmit={submit}>
        <label>
          Reason (the user sees it: say what to fix)
          <textarea
            required
            minLength={3}
            maxLength={500}
            rows={3}
            value={reason}
            onInput={(e) => setReason(e.currentTarget.value)}
          />
        </label>
        <ErrorBanner error={error} />
        <div class="dialog-actions">
          <button type="button" onClick={onClose} disabled={busy}>
            Cancel
          </button>
          <button type="submit" class="danger" disabled={busy}>
            Reject
          </button>
        </div>
      </form>
    </Dialog>
  );
}
