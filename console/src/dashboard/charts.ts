// Chart.js, loaded only when a chart is on screen, with only the pieces the
// console draws (keeps the bundle small).
import {
  ArcElement,
  BarController,
  BarElement,
  CategoryScale,
  Chart,
  DoughnutController,
  Legend,
  LinearScale,
  Tooltip,
  type ChartConfiguration,
} from 'chart.js';

Chart.register(ArcElement, BarController, BarElement, CategoryScale, DoughnutController, Legend, LinearScale, Tooltip);
Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
Chart.defaults.animation = false;

export type { Chart };

export const COLOURS = {
  good: '#2f9e44',
  bad: '#e03131',
  warn: '#f08c00',
  muted: '#adb5bd',
  info: '#1c7ed6',
};

export function draw(canvas: HTMLCanvasElement, config: ChartConfiguration): Chart {
  return new Chart(canvas, config);
}
