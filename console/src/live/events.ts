// The live feed (GET /api/admin/events): station, plugin and link state that
// the Stations, Plugins and Dashboard pages show without reloading.
//
// EventSource cannot send an Authorization header, and tokens do not belong in
// URLs, so the stream is read with fetch and parsed with eventsource-parser.
// When it ends (token expired, server restarted, network gone) it reconnects
// with backoff; every connection starts with a full snapshot, so nothing that
// happened in between is lost.
import { createParser } from 'eventsource-parser';

import { accessToken, refreshSession } from '../api/client';
import type { ConsoleEvent, LinkState, PluginOut, StationState } from '../api/types';
import { Store } from '../store';

export interface LiveState {
  /** `connecting` before the first snapshot, `live` while streaming, `retrying` after a drop. */
  status: 'off' | 'connecting' | 'live' | 'retrying';
  stations: ReadonlyMap<string, StationState>;
  plugins: ReadonlyMap<string, PluginOut>;
  link: LinkState | null;
  /** When the latest snapshot arrived (ms since the epoch). */
  snapshotAt: number | null;
}

const OFF: LiveState = { status: 'off', stations: new Map(), plugins: new Map(), link: null, snapshotAt: null };

export const live = new Store<LiveState>(OFF);

let running: AbortController | null = null;

export function startLive(): void {
  if (running) return;
  running = new AbortController();
  live.set({ ...live.get(), status: 'connecting' });
  void follow(running.signal);
}

export function stopLive(): void {
  running?.abort();
  running = null;
  live.set(OFF);
}

export function apply(state: LiveState, event: ConsoleEvent): LiveState {
  switch (event.type) {
    case 'snapshot':
      return {
        status: 'live',
        stations: new Map(event.stations.map((s) => [s.serial_number, s])),
        plugins: new Map(event.plugins.map((p) => [p.name, p])),
        link: event.link,
        snapshotAt: Date.now(),
      };
    case 'station': {
      const stations = new Map(state.stations);
      stations.set(event.station.serial_number, event.station);
      return { ...state, stations };
    }
    case 'station_removed': {
      const stations = new Map(state.stations);
      stations.delete(event.serial_number);
      return { ...state, stations };
    }
    case 'plugin': {
      const plugins = new Map(state.plugins);
      plugins.set(event.plugin.name, event.plugin);
      return { ...state, plugins };
    }
    case 'plugin_removed': {
      const plugins = new Map(state.plugins);
      plugins.delete(event.name);
      return { ...state, plugins };
    }
    case 'link':
      return { ...state, link: event.link };
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

async function follow(signal: AbortSignal): Promise<void> {
  let failures = 0;
  while (!signal.aborted) {
    try {
      const token = await accessToken();
      if (!token) return;
      const response = await fetch('/api/admin/events', {
        headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' },
        signal,
      });
      if (response.status === 401) {
        if (!(await refreshSession())) return;
        continue;
      }
      if (!response.ok || !response.body) throw new Error(`events: HTTP ${response.status}`);
      const parser = createParser({
        onEvent: (message) => {
          failures = 0;
          live.set(apply(live.get(), JSON.parse(message.data) as ConsoleEvent));
        },
      });
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        parser.feed(value);
      }
    } catch {
      // Network errors and aborts: retried below unless stopped.
    }
    if (signal.aborted) return;
    live.set({ ...live.get(), status: 'retrying' });
    await sleep(Math.min(15_000, 1_000 * 2 ** failures), signal);
    failures += 1;
  }
}
