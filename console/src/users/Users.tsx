// App users: search by phone, email, name, referral code or id, with filters;
// each row opens the user's page.
import { useState } from 'preact/hooks';
import { Link } from 'wouter-preact';

import { api, ok } from '../api/client';
import type { UserRowOut } from '../api/types';
import { PageHeader, StatusBadge } from '../ui/components';
import { formatDateTime, given } from '../ui/format';
import { DataTable, Pager, useCursorPage, type Column } from '../ui/table';

interface Filters {
  q: string;
  status: '' | 'active' | 'suspended' | 'deleted';
  kyc: '' | 'pending' | 'approved' | 'rejected' | 'none';
  created_from: string;
  created_to: string;
}

const EMPTY: Filters = { q: '', status: '', kyc: '', created_from: '', created_to: '' };

export function userName(u: UserRowOut): string {
  return u.full_name || u.username || u.phone || u.email || `User #${u.id}`;
}

export function Users() {
  const [draft, setDraft] = useState<Filters>(EMPTY);
  const [filters, setFilters] = useState<Filters>(EMPTY);
  const page = useCursorPage(
    (cursor) =>
      ok(
        api.GET('/api/admin/users', {
          params: {
            query: {
              limit: 25,
              q: given(filters.q),
              status: given(filters.status),
              kyc: given(filters.kyc),
              created_from: given(filters.created_from),
              created_to: given(filters.created_to),
              cursor,
            },
          },
        }),
      ),
    [filters],
  );
  const set = (key: keyof Filters) => (e: Event) =>
    setDraft({ ...draft, [key]: (e.currentTarget as HTMLInputElement).value });

  const columns: Column<UserRowOut>[] = [
    { key: 'id', label: '#', class: 'num', sort: (u) => u.id, render: (u) => u.id },
    {
      key: 'name',
      label: 'User',
      sort: (u) => userName(u),
      render: (u) => (
        <>
          <Link href={`/users/${u.id}`}>{userName(u)}</Link>
          {u.username && u.full_name ? <small class="muted"> @{u.username}</small> : null}
        </>
      ),
    },
    { key: 'phone', label: 'Phone', sort: (u) => u.phone, render: (u) => u.phone ?? '—' },
    { key: 'email', label: 'Email', sort: (u) => u.email, render: (u) => u.email ?? '—' },
    {
      key: 'status',
      label: 'Status',
      sort: (u) => u.restriction ?? u.status,
      render: (u) => <StatusBadge status={u.restriction ?? u.status} />,
    },
    { key: 'kyc', label: 'KYC', sort: (u) => u.kyc_status, render: (u) => <StatusBadge status={u.kyc_status} /> },
    { key: 'code', label: 'Referral code', render: (u) => <code>{u.referral_code}</code> },
    { key: 'created', label: 'Registered', sort: (u) => u.created_at, render: (u) => formatDateTime(u.created_at) },
  ];

  return (
    <>
      <PageHeader title="Users" />
      <form
        class="filters"
        role="search"
        onSubmit={(e) => {
          e.preventDefault();
          setFilters(draft);
        }}
      >
        <label>
          Search
          <input
            type="search"
            value={draft.q}
            maxLength={100}
            placeholder="Phone, email, name, referral code or id"
            onInput={set('q')}
          />
        </label>
        <label>
          Status
          <select value={draft.status} onChange={set('status')}>
            <option value="">any</option>
            <option value="active">active</option>
            <option value="suspended">suspended or banned</option>
            <option value="deleted">deleted</option>
          </select>
        </label>
        <label>
          KYC
          <select value={draft.kyc} onChange={set('kyc')}>
            <option value="">any</option>
            <option value="pending">pending</option>
            <option value="approved">approved</option>
            <option value="rejected">rejected</option>
            <option value="none">none</option>
          </select>
        </label>
        <label>
          Registered from
          <input type="date" value={draft.created_from} onInput={set('created_from')} />
        </label>
        <label>
          Registered to
          <input type="date" value={draft.created_to} onInput={set('created_to')} />
        </label>
        <div class="filter-actions">
          <button type="submit" class="primary">
            Search
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
      <DataTable caption="Users" columns={columns} rows={page.rows} rowKey={(u) => u.id} empty="No users match." />
      <Pager page={page} what="users" />
    </>
  );
}
