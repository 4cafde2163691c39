// What an operator looks at first: the network's state now, from the live
// feed, and the queues waiting for a decision. Rentals and revenue charts
// arrive with the analytics API (admin-panel issue).
import { useEffect, useState } from 'preact/hooks';
import { Link } from 'wouter-preact';

import { api, ok, session } from '../api/client';
import { can } from '../auth/permissions';
import { live } from '../live/events';
import { useStore } from '../store';
import { ErrorBanner, Kpi, Loading, PageHeader, StatusBadge } from '../ui/components';
import { formatCount } from '../ui/format';
import { ChartCanvas } from './ChartCanvas';

/** How many items a queue holds, up to one page: "100+" beyond. */
async function queueSize(list: () => Promise<{ results: unknown[]; next_cursor?: string | null }>): Promise<string> {
  const page = await list();
  return page.next_cursor ? `${page.results.length}+` : String(page.results.length);
}

export function Dashboard() {
  const operator = useStore(session, (s) => s?.operator);
  const state = useStore(live);
  const [queues, setQueues] = useState<{ kyc: string | null; refunds: string | null } | null>(null);
  const [error, setError] = useState<unknown>(null);

  useEffect(() => {
    const kyc = can(operator, 'kyc.review')
      ? queueSize(() => ok(api.GET('/api/admin/kyc', { params: { query: { status: 'pending', limit: 100 } } })))
      : Promise.resolve(null);
    const refunds = can(operator, 'refunds.review')
      ? queueSize(() => ok(api.GET('/api/admin/refunds', { params: { query: { status: 'pending', limit: 100 } } })))
      : Promise.resolve(null);
    Promise.all([kyc, refunds])
      .then(([k, r]) => setQueues({ kyc: k, refunds: r }))
      .catch(setError);
  }, [operator]);

  const ready = state.snapshotAt !== null && queues !== null;
  useEffect(() => {
    if (ready && performance.getEntriesByName('dashboard-ready').length === 0) {
      performance.mark('dashboard-ready');
    }
  }, [ready]);

  const stations = [...state.stations.values()];
  const byStatus = (status: string) => stations.filter((s) => s.status === status).length;
  const sum = (pick: (s: (typeof stations)[number]) => number) => stations.reduce((n, s) => n + pick(s), 0);
  const plugins = [...state.plugins.values()];
  const pluginsActive = plugins.filter((p) => p.status === 'active').length;

  return (
    <>
      <PageHeader title="Dashboard" />
      <ErrorBanner error={error} />
      {state.snapshotAt === null ? (
        <Loading what="the network's state" />
      ) : (
        <div data-ready={ready ? 'yes' : 'no'} class="dashboard">
          <section aria-labelledby="kpi-stations">
            <h2 id="kpi-stations">Stations</h2>
            <div class="kpis">
              <Kpi id="stations-total" label="Stations" value={formatCount(stations.length)} />
              <Kpi id="stations-online" label="Online" value={formatCount(byStatus('online'))} />
              <Kpi id="stations-offline" label="Offline" value={formatCount(byStatus('offline'))} />
              <Kpi id="stations-maintenance" label="In maintenance" value={formatCount(byStatus('maintenance'))} />
              <Kpi
                id="banks-ready"
                label="Power banks ready to rent"
                value={formatCount(sum((s) => s.available_power_banks))}
              />
              <Kpi id="slots-free" label="Free return slots" value={formatCount(sum((s) => s.empty_slots))} />
              <Kpi id="slots-total" label="Slots" value={formatCount(sum((s) => s.total_slots))} />
            </div>
          </section>
          <section aria-labelledby="kpi-system">
            <h2 id="kpi-system">System and queues</h2>
            <div class="kpis">
              <Kpi
                id="link"
                label="Station link (MQTT)"
                value={<StatusBadge status={state.link?.state ?? 'unknown'} />}
                hint={state.link?.last_error ?? undefined}
              />
              <Kpi
                id="plugins-active"
                label="Plugins active"
                value={`${pluginsActive} / ${plugins.length}`}
                hint={pluginsActive < plugins.length ? 'some plugins are not serving' : undefined}
              />
              {queues?.kyc != null ? (
                <Kpi id="kyc-pending" label="KYC waiting for review" value={<Link href="/kyc">{queues.kyc}</Link>} />
              ) : null}
              {queues?.refunds != null ? (
                <Kpi
                  id="refunds-pending"
                  label="Refunds waiting for a decision"
                  value={<Link href="/refunds">{queues.refunds}</Link>}
                />
              ) : null}
            </div>
          </section>
          <section aria-labelledby="charts" class="charts">
            <h2 id="charts">Fleet</h2>
            <div class="chart-grid">
              <figure>
                <figcaption>Stations by status</figcaption>
                <ChartCanvas
                  label={`Stations: ${byStatus('online')} online, ${byStatus('offline')} offline, ${byStatus('maintenance')} in maintenance`}
                  config={({ COLOURS }) => ({
                    type: 'doughnut',
                    data: {
                      labels: ['Online', 'Offline', 'Maintenance'],
                      datasets: [
                        {
                          data: [byStatus('online'), byStatus('offline'), byStatus('maintenance')],
                          backgroundColor: [COLOURS.good, COLOURS.bad, COLOURS.warn],
                        },
                      ],
                    },
                    options: { maintainAspectRatio: false, plugins: { legend: { position: 'bottom' } } },
                  })}
                />
              </figure>
              <figure>
                <figcaption>Slots per station</figcaption>
                <ChartCanvas
                  height={Math.max(240, stations.length * 28)}
                  label={`Slots per station: ${sum((s) => s.available_power_banks)} banks ready, ${sum((s) => s.empty_slots)} free slots in all`}
                  config={({ COLOURS }) => ({
                    type: 'bar',
                    data: {
                      labels: stations.map((s) => s.serial_number),
                      datasets: [
                        {
                          label: 'Ready to rent',
                          data: stations.map((s) => s.available_power_banks),
                          backgroundColor: COLOURS.good,
                        },
                        {
                          label: 'Charging or held',
                          data: stations.map((s) => s.total_slots - s.available_power_banks - s.empty_slots),
                          backgroundColor: COLOURS.warn,
                        },
                        { label: 'Free', data: stations.map((s) => s.empty_slots), backgroundColor: COLOURS.muted },
                      ],
                    },
                    options: {
                      indexAxis: 'y',
                      maintainAspectRatio: false,
                      scales: { x: { stacked: true, ticks: { precision: 0 } }, y: { stacked: true } },
                      plugins: { legend: { position: 'bottom' } },
                    },
                  })}
                />
              </figure>
            </div>
            <p class="muted">
              Rentals and revenue per day, with range pickers, appear here when the analytics API is available.
            </p>
          </section>
        </div>
      )}
    </>
  );
}
