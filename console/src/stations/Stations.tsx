// Every station with its live link status and free slots, a map, and a way
// into each station.
import { useState } from 'preact/hooks';
import { Link } from 'wouter-preact';

import { api, ok } from '../api/client';
import type { StationSummary } from '../api/types';
import { live } from '../live/events';
import { useStore } from '../store';
import { PageHeader, StatusBadge } from '../ui/components';
import { formatAgo, formatDateTime } from '../ui/format';
import { DataTable, Pager, useCursorPage, type Column } from '../ui/table';
import { StationMap } from './StationMap';

const STATUSES = ['online', 'offline', 'maintenance'] as const;
type StatusFilter = (typeof STATUSES)[number] | '';

/** A listed station with what the live feed knows newer than the page. */
type Row = StationSummary;

const COLUMNS: Column<Row>[] = [
  {
    key: 'serial',
    label: 'Station',
    sort: (s) => s.serial_number,
    render: (s) => (
      <Link href={`/stations/${encodeURIComponent(s.serial_number)}`}>
        <strong>{s.serial_number}</strong>
        <br />
        <small>{s.name}</small>
      </Link>
    ),
  },
  { key: 'city', label: 'City', sort: (s) => s.city, render: (s) => s.city },
  {
    key: 'status',
    label: 'Link',
    sort: (s) => s.status,
    render: (s) => (
      <span data-station-status={s.status}>
        <StatusBadge status={s.status} />
      </span>
    ),
  },
  {
    key: 'ready',
    label: 'Banks ready',
    class: 'num',
    sort: (s) => s.available_power_banks,
    render: (s) => s.available_power_banks,
  },
  { key: 'free', label: 'Free slots', class: 'num', sort: (s) => s.empty_slots, render: (s) => s.empty_slots },
  { key: 'slots', label: 'Slots', class: 'num', sort: (s) => s.total_slots, render: (s) => s.total_slots },
  {
    key: 'heartbeat',
    label: 'Last heartbeat',
    sort: (s) => s.last_heartbeat_at ?? '',
    render: (s) => <span title={formatDateTime(s.last_heartbeat_at)}>{formatAgo(s.last_heartbeat_at)}</span>,
  },
];

export function Stations() {
  const [status, setStatus] = useState<StatusFilter>('');
  const [showMap, setShowMap] = useState(true);
  const state = useStore(live);
  const page = useCursorPage(
    (cursor) =>
      ok(
        api.GET('/api/stations', {
          params: { query: { limit: 25, ...(status ? { status } : {}), ...(cursor ? { cursor } : {}) } },
        }),
      ),
    [status],
  );
  // The page as listed, with each station's live state laid over it.
  const rows: Row[] = page.rows.map((s) => {
    const now = state.stations.get(s.serial_number);
    return now ? { ...s, ...now } : s;
  });

  return (
    <>
      <PageHeader title="Stations">
        <label class="inline">
          Status{' '}
          <select value={status} onChange={(e) => setStatus(e.currentTarget.value as StatusFilter)}>
            <option value="">all</option>
            {STATUSES.map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </select>
        </label>
        <button type="button" aria-pressed={showMap} onClick={() => setShowMap((v) => !v)}>
          {showMap ? 'Hide map' : 'Show map'}
        </button>
      </PageHeader>
      {showMap ? (
        <section aria-label="Map">
          <StationMap stations={[...state.stations.values()].filter((s) => !status || s.status === status)} />
        </section>
      ) : null}
      <DataTable caption="Stations" columns={COLUMNS} rows={rows} rowKey={(s) => s.serial_number} />
      <Pager page={page} what="stations" />
    </>
  );
}
