// Coupons: what exists, how often each was used, and creating, pausing and
// deleting them.
import { useState } from 'preact/hooks';

import { api, ok, session } from '../api/client';
import type { CouponOut } from '../api/types';
import { can } from '../auth/permissions';
import { useStore } from '../store';
import { Dialog, ErrorBanner, Notice, PageHeader, StatusBadge } from '../ui/components';
import { formatDateTime, formatNpr, parseNpr } from '../ui/format';
import { DataTable, Pager, useCursorPage, type Column } from '../ui/table';

type ActiveFilter = '' | 'true' | 'false';

function discount(c: CouponOut): string {
  if (c.discount_type === 'percentage' && c.percentage_bp != null) {
    const pct = `${(c.percentage_bp / 100).toFixed(c.percentage_bp % 100 === 0 ? 0 : 2)} %`;
    return c.max_discount_paisa != null ? `${pct} (at most ${formatNpr(c.max_discount_paisa)})` : pct;
  }
  return formatNpr(c.fixed_paisa ?? 0);
}

export function Coupons() {
  const operator = useStore(session, (s) => s?.operator);
  const manage = can(operator, 'coupons.manage');
  const [active, setActive] = useState<ActiveFilter>('');
  const [creating, setCreating] = useState(false);
  const [notice, setNotice] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  const page = useCursorPage(
    (cursor) =>
      ok(
        api.GET('/api/admin/coupons', {
          params: {
            query: { limit: 25, ...(active ? { active: active === 'true' } : {}), ...(cursor ? { cursor } : {}) },
          },
        }),
      ),
    [active],
  );

  const setActiveFlag = async (c: CouponOut, isActive: boolean) => {
    setError(null);
    try {
      const updated = await ok(
        api.PATCH('/api/admin/coupons/{code}', { params: { path: { code: c.code } }, body: { is_active: isActive } }),
      );
      page.setRows((rows) => rows.map((r) => (r.code === c.code ? updated : r)));
      setNotice(`${c.code} ${isActive ? 'activated' : 'paused'}.`);
    } catch (e) {
      setError(e);
    }
  };

  const remove = async (c: CouponOut) => {
    if (!window.confirm(`Delete coupon ${c.code}? This cannot be undone.`)) return;
    setError(null);
    try {
      await ok(api.DELETE('/api/admin/coupons/{code}', { params: { path: { code: c.code } } }));
      page.setRows((rows) => rows.filter((r) => r.code !== c.code));
      setNotice(`${c.code} deleted.`);
    } catch (e) {
      setError(e);
    }
  };

  const columns: Column<CouponOut>[] = [
    {
      key: 'code',
      label: 'Code',
      sort: (c) => c.code,
      render: (c) => (
        <>
          <code>{c.code}</code>
          <br />
          <small>{c.name}</small>
        </>
      ),
    },
    { key: 'discount', label: 'Discount', render: discount },
    {
      key: 'min',
      label: 'Minimum',
      class: 'num',
      sort: (c) => c.min_amount_paisa,
      render: (c) => formatNpr(c.min_amount_paisa),
    },
    {
      key: 'valid',
      label: 'Valid',
      sort: (c) => c.valid_until,
      render: (c) => (
        <small>
          {formatDateTime(c.valid_from)} –<br />
          {formatDateTime(c.valid_until)}
        </small>
      ),
    },
    {
      key: 'used',
      label: 'Used',
      class: 'num',
      sort: (c) => c.times_used,
      render: (c) => `${c.times_used}${c.max_uses_total != null ? ` / ${c.max_uses_total}` : ''}`,
    },
    {
      key: 'state',
      label: 'State',
      sort: (c) => (c.is_active ? 1 : 0),
      render: (c) => (
        <>
          <StatusBadge status={c.is_active ? 'active' : 'disabled'} /> {c.is_public ? '' : <small>(private)</small>}
        </>
      ),
    },
    ...(manage
      ? [
          {
            key: 'actions',
            label: 'Actions',
            render: (c: CouponOut) => (
              <span class="actions">
                <button type="button" onClick={() => void setActiveFlag(c, !c.is_active)}>
                  {c.is_active ? 'Pause' : 'Activate'}
                </button>
                <button type="button" class="danger" onClick={() => void remove(c)} disabled={c.times_used > 0}>
                  Delete
                </button>
              </span>
            ),
          },
        ]
      : []),
  ];

  return (
    <>
      <PageHeader title="Coupons">
        <label class="inline">
          Show{' '}
          <select value={active} onChange={(e) => setActive(e.currentTarget.value as ActiveFilter)}>
            <option value="">all</option>
            <option value="true">active</option>
            <option value="false">paused</option>
          </select>
        </label>
        {manage ? (
          <button type="button" class="primary" onClick={() => setCreating(true)}>
            New coupon…
          </button>
        ) : null}
      </PageHeader>
      {notice ? <Notice>{notice}</Notice> : null}
      <ErrorBanner error={error} />
      <DataTable caption="Coupons" columns={columns} rows={page.rows} rowKey={(c) => c.code} empty="No coupons." />
      <Pager page={page} what="coupons" />
      {creating ? (
        <CreateDialog
          onClose={() => setCreating(false)}
          onCreated={(c) => {
            setCreating(false);
            setNotice(`${c.code} created.`);
            page.reload();
          }}
        />
      ) : null}
    </>
  );
}

/** `datetime-local` input (Kathmandu time, UTC+05:45) to RFC 3339. */
function kathmanduToRfc3339(local: string): string {
  return `${local.length === 16 ? `${local}:00` : local}+05:45`;
}

function CreateDialog({ onClose, onCreated }: { onClose: () => void; onCreated: (c: CouponOut) => void }) {
  const [form, setForm] = useState({
    code: '',
    name: '',
    kind: 'percentage' as 'percentage' | 'fixed',
    value: '',
    maxDiscount: '',
    minAmount: '0',
    validUntil: '',
    maxUsesTotal: '',
    maxUsesPerUser: '1',
    isPublic: true,
  });
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const field =
    (name: keyof typeof form) =>
    (e: Event & { currentTarget: HTMLInputElement | HTMLSelectElement }) =>
      setForm((f) => ({
        ...f,
        [name]: e.currentTarget instanceof HTMLInputElement && e.currentTarget.type === 'checkbox' ? e.currentTarget.checked : e.currentTarget.value,
      }));

  const submit = async (e: Event) => {
    e.preventDefault();
    setError(null);
    const optionalNpr = (text: string) => (text.trim() === '' ? null : parseNpr(text));
    const optionalInt = (text: string) => (text.trim() === '' ? null : Number.parseInt(text, 10));
    // Both are fixed-point with two decimals: 12.5 % is 1250 basis points, NPR 12.5 is 1250 paisa.
    const value = parseNpr(form.value);
    if (value === null) {
      setError(new Error(form.kind === 'percentage' ? 'percentage: a number such as 10 or 12.5' : 'amount: NPR such as 50 or 49.99'));
      return;
    }
    setBusy(true);
    try {
      onCreated(
        await ok(
          api.POST('/api/admin/coupons', {
            body: {
              code: form.code.trim(),
              name: form.name.trim() || null,
              percentage_bp: form.kind === 'percentage' ? value : null,
              fixed_paisa: form.kind === 'fixed' ? value : null,
              max_discount_paisa: form.kind === 'percentage' ? optionalNpr(form.maxDiscount) : null,
              min_amount_paisa: optionalNpr(form.minAmount) ?? 0,
              valid_until: kathmanduToRfc3339(form.validUntil),
              max_uses_total: optionalInt(form.maxUsesTotal),
              max_uses_per_user: optionalInt(form.maxUsesPerUser),
              is_public: form.isPublic,
            },
          }),
        ),
      );
    } catch (failure) {
      setError(failure);
      setBusy(false);
    }
  };

  return (
    <Dialog title="New coupon" onClose={onClose}>
      <form onSubmit={submit} class="grid-form">
        <label>
          Code
          <input required pattern="[A-Za-z0-9_\-]{3,32}" value={form.code} onInput={field('code')} />
        </label>
        <label>
          Name
          <input value={form.name} onInput={field('name')} />
        </label>
        <label>
          Discount
          <select value={form.kind} onChange={field('kind')}>
            <option value="percentage">percentage</option>
            <option value="fixed">fixed amount (NPR)</option>
          </select>
        </label>
        <label>
          {form.kind === 'percentage' ? 'Percent' : 'Amount (NPR)'}
          <input required inputMode="decimal" value={form.value} onInput={field('value')} />
        </label>
        {form.kind === 'percentage' ? (
          <label>
            At most (NPR, optional)
            <input inputMode="decimal" value={form.maxDiscount} onInput={field('maxDiscount')} />
          </label>
        ) : null}
        <label>
          Minimum amount (NPR)
          <input inputMode="decimal" value={form.minAmount} onInput={field('minAmount')} />
        </label>
        <label>
          Valid until (Nepal time)
          <input type="datetime-local" required value={form.validUntil} onInput={field('validUntil')} />
        </label>
        <label>
          Uses in all (optional)
          <input inputMode="numeric" pattern="[0-9]*" value={form.maxUsesTotal} onInput={field('maxUsesTotal')} />
        </label>
        <label>
          Uses per user (optional)
          <input inputMode="numeric" pattern="[0-9]*" value={form.maxUsesPerUser} onInput={field('maxUsesPerUser')} />
        </label>
        <label class="check">
          <input type="checkbox" checked={form.isPublic} onChange={field('isPublic')} /> Listed for all users
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
