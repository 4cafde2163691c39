import type { ChartConfiguration } from 'chart.js';
import { useEffect, useRef } from 'preact/hooks';

type Charts = typeof import('./charts');
type Chart = import('./charts').Chart;

/** A chart drawn by Chart.js (loaded on first use); `label` is what a screen reader hears. */
export function ChartCanvas({
  config,
  label,
  height = 240,
}: {
  config: (charts: Charts) => ChartConfiguration;
  label: string;
  height?: number;
}) {
  const canvas = useRef<HTMLCanvasElement>(null);
  const chart = useRef<Chart | null>(null);
  useEffect(() => {
    let cancelled = false;
    void import('./charts').then((charts) => {
      if (cancelled || !canvas.current) return;
      const next = config(charts);
      if (chart.current) {
        chart.current.data = next.data;
        chart.current.update();
      } else {
        chart.current = charts.draw(canvas.current, next);
      }
    });
    return () => {
      cancelled = true;
    };
  });
  useEffect(() => () => chart.current?.destroy(), []);
  return (
    <div class="chart" style={{ height: `${height}px` }}>
      <canvas ref={canvas} role="img" aria-label={label} />
    </div>
  );
}
