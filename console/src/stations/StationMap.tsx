// Station positions on an OpenStreetMap map (Leaflet). Map tiles are the one
// thing the console loads from the internet: when they cannot be reached
// (offline site, blocked network), the map gives way to a plain plot of the
// positions, which needs nothing from outside.
import type { Map as LeafletMap, LayerGroup } from 'leaflet';
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { useLocation } from 'wouter-preact';

import type { StationState } from '../api/types';

/** The host's Content-Security-Policy allows images from this server only. */
const TILE_URL = 'https://tile.openstreetmap.org/{z}/{x}/{y}.png';
const ATTRIBUTION = '&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> contributors';
/** Without a single tile by then, the tile server counts as unreachable. */
const TILE_DEADLINE_MS = 5000;

const COLOUR: Record<string, string> = { online: '#2f9e44', offline: '#e03131', maintenance: '#f08c00' };

export function StationMap({ stations }: { stations: StationState[] }) {
  const [tiles, setTiles] = useState<'trying' | 'ok' | 'unreachable'>(navigator.onLine ? 'trying' : 'unreachable');
  return (
    <div class="map-box" data-map={tiles === 'unreachable' ? 'plot' : 'tiles'}>
      {tiles === 'unreachable' ? (
        <>
          <p class="muted map-note" role="status">
            Map tiles are unreachable; showing positions only.
          </p>
          <PositionPlot stations={stations} />
        </>
      ) : (
        <TileMap stations={stations} onTiles={setTiles} />
      )}
    </div>
  );
}

function TileMap({
  stations,
  onTiles,
}: {
  stations: StationState[];
  onTiles: (state: 'ok' | 'unreachable') => void;
}) {
  const element = useRef<HTMLDivElement>(null);
  const map = useRef<{ map: LeafletMap; markers: LayerGroup; L: typeof import('leaflet') } | null>(null);
  const [, navigate] = useLocation();

  useEffect(() => {
    let disposed = false;
    let deadline: ReturnType<typeof setTimeout> | undefined;
    void Promise.all([import('leaflet'), import('leaflet/dist/leaflet.css')]).then(([L]) => {
      if (disposed || !element.current) return;
      const m = L.map(element.current, { zoomControl: true, attributionControl: true });
      let loaded = false;
      const layer = L.tileLayer(TILE_URL, { maxZoom: 19, attribution: ATTRIBUTION });
      layer.on('tileload', () => {
        loaded = true;
        onTiles('ok');
      });
      layer.on('tileerror', () => {
        if (!loaded) onTiles('unreachable');
      });
      layer.addTo(m);
      deadline = setTimeout(() => {
        if (!loaded) onTiles('unreachable');
      }, TILE_DEADLINE_MS);
      map.current = { map: m, markers: L.layerGroup().addTo(m), L };
      m.setView([27.7, 85.32], 12);
      showStations();
    });
    return () => {
      disposed = true;
      clearTimeout(deadline);
      map.current?.map.remove();
      map.current = null;
    };
  }, []);

  const fitted = useRef(false);
  const showStations = () => {
    const current = map.current;
    if (!current) return;
    current.markers.clearLayers();
    for (const s of stations) {
      const marker = current.L.circleMarker([s.latitude, s.longitude], {
        radius: 9,
        color: '#fff',
        weight: 2,
        fillColor: COLOUR[s.status] ?? '#868e96',
        fillOpacity: 0.95,
      });
      marker.bindTooltip(`${s.name} (${s.serial_number}): ${s.status}, ${s.available_power_banks} ready`);
      marker.on('click', () => navigate(`/stations/${encodeURIComponent(s.serial_number)}`));
      marker.addTo(current.markers);
    }
    // Frame the stations once; later updates keep the operator's view.
    if (stations.length > 0 && !fitted.current) {
      fitted.current = true;
      current.map.fitBounds(current.L.latLngBounds(stations.map((s) => [s.latitude, s.longitude])), {
        padding: [24, 24],
      });
    }
  };
  useEffect(showStations, [stations]);

  return <div ref={element} class="map" role="region" aria-label="Map of stations" />;
}

/** Stations as dots on their latitude and longitude, drawn in SVG. */
export function PositionPlot({ stations }: { stations: StationState[] }) {
  const [, navigate] = useLocation();
  const width = 640;
  const height = 400;
  const pad = 40;
  const layout = useMemo(() => {
    if (stations.length === 0) return [];
    const lats = stations.map((s) => s.latitude);
    const lngs = stations.map((s) => s.longitude);
    const [minLat, maxLat] = [Math.min(...lats), Math.max(...lats)];
    const [minLng, maxLng] = [Math.min(...lngs), Math.max(...lngs)];
    // Equirectangular: a degree of longitude is cos(latitude) of a degree of latitude.
    const squash = Math.cos((((minLat + maxLat) / 2) * Math.PI) / 180);
    const spanX = Math.max((maxLng - minLng) * squash, 1e-4);
    const spanY = Math.max(maxLat - minLat, 1e-4);
    const scale = Math.min((width - 2 * pad) / spanX, (height - 2 * pad) / spanY);
    const offsetX = (width - spanX * scale) / 2;
    const offsetY = (height - spanY * scale) / 2;
    return stations.map((s) => ({
      station: s,
      x: offsetX + (s.longitude - minLng) * squash * scale,
      y: height - (offsetY + (s.latitude - minLat) * scale),
    }));
  }, [stations]);

  return (
    <svg
      class="plot"
      viewBox={`0 0 ${width} ${height}`}
      role="group"
      aria-label="Station positions (north is up)"
      data-testid="position-plot"
    >
      <rect x="0" y="0" width={width} height={height} class="plot-bg" />
      <text x={width - 12} y={20} text-anchor="end" class="plot-compass">
        N ↑
      </text>
      {layout.map(({ station, x, y }) => (
        <a
          key={station.serial_number}
          href={`/console/stations/${encodeURIComponent(station.serial_number)}`}
          onClick={(e) => {
            e.preventDefault();
            navigate(`/stations/${encodeURIComponent(station.serial_number)}`);
          }}
          aria-label={`${station.name} (${station.serial_number}), ${station.status}`}
        >
          <circle cx={x} cy={y} r={8} fill={COLOUR[station.status] ?? '#868e96'} stroke="#fff" stroke-width={2} />
          <text x={x + 11} y={y + 4} class="plot-label">
            {station.serial_number}
          </text>
        </a>
      ))}
    </svg>
  );
}
