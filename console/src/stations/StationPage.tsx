// One station: its slots and banks (live), how its link is doing, its open
// issues, and ejecting a bank for maintenance.
import { useEffect, useState } from 'preact/hooks';
import { Link } from 'wouter-preact';

import { api, ok, session } from '../api/client';
import type { SlotOut, StationDetail, StationLinkInfo } from '../api/types';
import { can } from '../auth/permissions';
import { live } from '../live/events';
import { useStore } from '../store';
import { Dialog, ErrorBanner, Loading, Notice, PageHeader, StatusBadge } from '../ui/components';
import { formatAgo, formatDateTime } from '../ui/format';
import { DataTable, Pager, useCursorPage, type Column } from '../ui/table';

export function StationPage({ sn }: { sn: string }) {
  const operator = useStore(session, (s) => s?.operator);
  // A new object whenever the feed reports a change at this station.
  const liveState = useStore(live, (l) => l.stations.get(sn));
  const [station, setStation] = useState<StationDetail | null>(null);
  const [link, setLink] = useState<StationLinkInfo | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [ejecting, setEjecting] = useState<SlotOut | null>(null);
  const [notice, setNotice] = useState<string | null>(null);

  useEffect(() => {
    let current = true;
    ok(api.GET('/api/stations/{sn}', { params: { path: { sn } } }))
      .then((s) => current && (setStation(s), setError(null)))
      .catch((e: unknown) => current && setError(e));
    // Not every role may read the link (finance may not): no call the API would refuse.
    if (can(operator, 'stations.link')) {
      ok(api.GET('/api/admin/stations/{sn}/link', { params: { path: { sn } } }))
        .then((l) => current && setLink(l))
        .catch(() => current && setLink(null));
    }
    return () => {
      current = false;
    };
  }, [sn, liveState]);

  const issues = useCursorPage(
    (cursor) =>
      ok(
        api.GET('/api/stations/{sn}/issues', {
          params: { path: { sn }, query: { limit: 20, ...(cursor ? { cursor } : {}) } },
        }),
      ),
    [sn],
  );

  const slotColumns: Column<SlotOut>[] = [
    { key: 'slot', label: 'Slot', class: 'num', sort: (s) => s.slot_index, render: (s) => s.slot_index },
    {
      key: 'status',
      label: 'Status',
      sort: (s) => s.status,
      render: (s) => (
        <span data-slot-status={s.status}>
          <StatusBadge status={s.status} />
        </span>
      ),
    },
    { key: 'bank', label: 'Power bank', sort: (s) => s.power_bank_serial, render: (s) => s.power_bank_serial ?? '—' },
    {
      key: 'battery',
      label: 'Battery',
      class: 'num',
      sort: (s) => s.battery_level,
      render: (s) => (s.battery_level === null || s.battery_level === undefined ? '—' : `${s.battery_level} %`),
    },
    {
      key: 'actions',
      label: 'Actions',
      render: (s) =>
        can(operator, 'stations.eject') && s.status === 'occupied' && s.power_bank_serial ? (
          <button type="button" onClick={() => setEjecting(s)} aria-label={`Eject slot ${s.slot_index}`}>
            Eject
          </button>
        ) : null,
    },
  ];

  if (!station) {
    return (
      <>
        <PageHeader title={sn} />
        <ErrorBanner error={error} />
        {error ? null : <Loading what="the station" />}
      </>
    );
  }
  const status = liveState?.status ?? station.status;

  return (
    <>
      <PageHeader title={`${station.name}`}>
        <Link href="/stations">← All stations</Link>
      </PageHeader>
      <ErrorBanner error={error} />
      {notice ? <Notice>{notice}</Notice> : null}
      <dl class="facts">
        <div>
          <dt>Serial</dt>
          <dd>{station.serial_number}</dd>
        </div>
        <div>
          <dt>Link</dt>
          <dd data-station-status={status}>
            <StatusBadge status={status} />
          </dd>
        </div>
        <div>
          <dt>Last heartbeat</dt>
          <dd title={formatDateTime(liveState?.last_heartbeat_at ?? station.last_heartbeat_at)}>
            {formatAgo(liveState?.last_heartbeat_at ?? station.last_heartbeat_at)}
          </dd>
        </div>
        <div>
          <dt>Banks ready / free slots / slots</dt>
          <dd>
            {station.available_power_banks} / {station.empty_slots} / {station.total_slots}
          </dd>
        </div>
        <div>
          <dt>Address</dt>
          <dd>
            {station.address}, {station.city}
          </dd>
        </div>
        <div>
          <dt>Position</dt>
          <dd>
            {station.latitude.toFixed(5)}, {station.longitude.toFixed(5)}
          </dd>
        </div>
        <div>
          <dt>Firmware</dt>
          <dd>{station.firmware_version ?? '—'}</dd>
        </div>
        <div>
          <dt>Opening hours</dt>
          <dd>{station.opening_hours ?? '—'}</dd>
        </div>
        {link ? (
          <>
            <div>
              <dt>Protocol</dt>
              <dd>
                {link.protocol} {link.protocol_loaded ? '' : <StatusBadge status="not loaded" />}
              </dd>
            </div>
            <div>
              <dt>Messages applied / undecodable</dt>
              <dd>
                {link.traffic.messages_applied} / {link.traffic.decode_failures}
                {link.traffic.last_decode_error ? (
                  <small class="muted"> — last: {link.traffic.last_decode_error}</small>
                ) : null}
              </dd>
            </div>
          </>
        ) : null}
      </dl>

      <h2>Slots</h2>
      <DataTable
        caption={`Slots of ${station.serial_number}`}
        columns={slotColumns}
        rows={station.slots}
        rowKey={(s) => s.slot_index}
      />

      <h2>Open issues</h2>
      <DataTable
        caption="Open issues"
        empty="No open issues."
        rows={issues.rows}
        rowKey={(i) => i.id}
        columns={[
          { key: 'type', label: 'Type', sort: (i) => i.issue_type, render: (i) => i.issue_type.replaceAll('_', ' ') },
          { key: 'description', label: 'Description', render: (i) => i.description },
          { key: 'status', label: 'Status', sort: (i) => i.status, render: (i) => <StatusBadge status={i.status} /> },
          {
            key: 'reported',
            label: 'Reported',
            sort: (i) => i.reported_at,
            render: (i) => formatDateTime(i.reported_at),
          },
        ]}
      />
      <Pager page={issues} what="issues" />

      {ejecting ? (
        <EjectDialog
          sn={station.serial_number}
          name={station.name}
          slot={ejecting}
          onClose={() => setEjecting(null)}
          onEjected={(bank) => {
            setEjecting(null);
            setNotice(`Power bank ${bank} ejected from slot ${ejecting.slot_index}.`);
          }}
        />
      ) : null}
    </>
  );
}

function EjectDialog({
  sn,
  name,
  slot,
  onClose,
  onEjected,
}: {
  sn: string;
  name: string;
  slot: SlotOut;
  onClose: () => void;
  onEjected: (bank: string) => void;
}) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const eject = async () => {
    setBusy(true);
    setError(null);
    try {
      const result = await ok(
        api.POST('/api/admin/stations/{sn}/eject', { params: { path: { sn } }, body: { slot: slot.slot_index } }),
      );
      onEjected(result.power_bank);
    } catch (e) {
      setError(e);
      setBusy(false);
    }
  };
  return (
    <Dialog title={`Eject slot ${slot.slot_index}?`} onClose={onClose}>
      <p>
        The station <strong>{name}</strong> ({sn}) will push out power bank <strong>{slot.power_bank_serial}</strong>{' '}
        from slot {slot.slot_index}. Someone should be there to take it.
      </p>
      <ErrorBanner error={error} />
      <div class="dialog-actions">
        <button type="button" onClick={onClose} disabled={busy}>
          Cancel
        </button>
        <button type="button" class="danger" onClick={() => void eject()} disabled={busy} autoFocus>
          {busy ? 'Waiting for the station…' : 'Eject'}
        </button>
      </div>
    </Dialog>
  );
}
