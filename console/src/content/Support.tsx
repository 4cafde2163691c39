// Support threads from riders: list by status, read a thread, reply, close.
import { useEffect, useState } from 'preact/hooks';
import { Link } from 'wouter-preact';

import { api, ok, session } from '../api/client';
import type { ThreadOut, ThreadSummary } from '../api/types';
import { can } from '../auth/permissions';
import { useStore } from '../store';
import { ErrorBanner, Loading, Notice, StatusBadge } from '../ui/components';
import { formatDateTime } from '../ui/format';
import { DataTable, Pager, useCursorPage, type Column } from '../ui/table';

type Status = '' | 'open' | 'answered' | 'closed';

export function Support() {
  const [status, setStatus] = useState<Status>('open');
  const [open, setOpen] = useState<number | null>(null);
  const page = useCursorPage(
    (cursor) =>
      ok(api.GET('/api/admin/support/threads', { params: { query: { limit: 25, status: status || undefined, cursor } } })),
    [status],
  );
  const columns: Column<ThreadSummary>[] = [
    { key: 'id', label: '#', class: 'num', sort: (t) => t.id, render: (t) => t.id },
    {
      key: 'subject',
      label: 'Subject',
      sort: (t) => t.subject,
      render: (t) => (
        <button type="button" class="link" onClick={() => setOpen(t.id)}>
          {t.subject}
        </button>
      ),
    },
    { key: 'user', label: 'User', render: (t) => <Link href={`/users/${t.user_id}`}>#{t.user_id}</Link> },
    { key: 'status', label: 'Status', sort: (t) => t.status, render: (t) => <StatusBadge status={t.status} /> },
    {
      key: 'about',
      label: 'About',
      render: (t) => [t.rental_id ? `rental #${t.rental_id}` : null, t.station_sn].filter(Boolean).join(', ') || '—',
    },
    { key: 'updated', label: 'Updated', sort: (t) => t.updated_at, render: (t) => formatDateTime(t.updated_at) },
  ];
  return (
    <>
      <label class="inline">
        Show{' '}
        <select value={status} onChange={(e) => setStatus(e.currentTarget.value as Status)}>
          <option value="open">open</option>
          <option value="answered">answered</option>
          <option value="closed">closed</option>
          <option value="">all</option>
        </select>
      </label>
      <DataTable caption="Support threads" columns={columns} rows={page.rows} rowKey={(t) => t.id} empty="No threads." />
      <Pager page={page} what="threads" />
      {open !== null ? (
        <Thread
          id={open}
          onChanged={(t) => page.setRows((rows) => rows.map((r) => (r.id === t.id ? { ...r, ...t } : r)))}
        />
      ) : null}
    </>
  );
}

function Thread({ id, onChanged }: { id: number; onChanged: (t: ThreadSummary) => void }) {
  const operator = useStore(session, (s) => s?.operator);
  const [thread, setThread] = useState<ThreadOut | null>(null);
  const [reply, setReply] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [notice, setNotice] = useState<string | null>(null);
  useEffect(() => {
    setThread(null);
    setNotice(null);
    ok(api.GET('/api/admin/support/threads/{id}', { params: { path: { id } } }))
      .then(setThread)
      .catch(setError);
  }, [id]);
  if (!thread) return error ? <ErrorBanner error={error} /> : <Loading what="thread" />;
  const done = (t: ThreadOut, message: string) => {
    setThread(t);
    onChanged(t);
    setNotice(message);
    setBusy(false);
  };
  const send = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const t = await ok(
        api.POST('/api/admin/support/threads/{id}/reply', { params: { path: { id } }, body: { message: reply.trim() } }),
      );
      setReply('');
      done(t, 'Reply sent; the rider is notified.');
    } catch (failure) {
      setError(failure);
      setBusy(false);
    }
  };
  const close = async () => {
    setBusy(true);
    setError(null);
    try {
      done(await ok(api.POST('/api/admin/support/threads/{id}/close', { params: { path: { id } } })), 'Thread closed.');
    } catch (failure) {
      setError(failure);
      setBusy(false);
    }
  };
  return (
    <section class="section" aria-labelledby="thread-title" data-thread={thread.id}>
      <h2 id="thread-title">
        #{thread.id} {thread.subject} <StatusBadge status={thread.status} />
      </h2>
      {notice ? <Notice>{notice}</Notice> : null}
      <ul class="messages">
        {thread.messages.map((m) => (
          <li key={m.id} class={m.from_operator ? 'operator' : ''}>
            <small class="muted">
              {m.from_operator ? 'Operator' : `User #${thread.user_id}`} · {formatDateTime(m.created_at)}
            </small>
            <div>{m.body}</div>
            {m.attachments.length ? <small>{m.attachments.length} attachment(s)</small> : null}
          </li>
        ))}
      </ul>
      <ErrorBanner error={error} />
      {thread.status !== 'closed' ? (
        <>
          {can(operator, 'support.reply') ? (
            <form onSubmit={send}>
              <label>
                Reply
                <textarea required minLength={2} maxLength={5000} rows={3} value={reply} onInput={(e) => setReply(e.currentTarget.value)} />
              </label>
              <button type="submit" class="primary" disabled={busy}>
                Send reply
              </button>{' '}
              {can(operator, 'support.close') ? (
                <button type="button" disabled={busy} onClick={() => void close()}>
                  Close thread
                </button>
              ) : null}
            </form>
          ) : null}
        </>
      ) : (
        <p class="muted">Closed {formatDateTime(thread.closed_at)}.</p>
      )}
    </section>
  );
}
