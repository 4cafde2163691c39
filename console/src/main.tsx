import { render } from 'preact';

import { App } from './app';
import './styles.css';

performance.mark('console-start');
const root = document.getElementById('app');
if (root) render(<App />, root);
