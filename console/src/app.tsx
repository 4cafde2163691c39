// The shell: sign-in gate, navigation by permission, and the routes.
import type { ComponentType } from 'preact';
import { lazy, Suspense } from 'preact/compat';
import { useEffect, useState } from 'preact/hooks';
import { Link, Route, Router, Switch, useLocation } from 'wouter-preact';

import { session, signOut } from './api/client';
import { can, type Permission } from './auth/permissions';
import { SignIn } from './auth/SignIn';
import { Dashboard } from './dashboard/Dashboard';
import { live, startLive, stopLive } from './live/events';
import { useStore } from './store';
import { Loading, StatusBadge } from './ui/components';

// Pages other than the dashboard load when first opened, so signing in and
// the dashboard fetch as little script as possible.
const Stations = lazy(() => import('./stations/Stations').then((m) => ({ default: m.Stations })));
const StationPage = lazy(() => import('./stations/StationPage').then((m) => ({ default: m.StationPage })));
const KycQueue = lazy(() => import('./kyc/KycQueue').then((m) => ({ default: m.KycQueue })));
const Refunds = lazy(() => import('./refunds/Refunds').then((m) => ({ default: m.Refunds })));
const Coupons = lazy(() => import('./coupons/Coupons').then((m) => ({ default: m.Coupons })));
const Plugins = lazy(() => import('./plugins/Plugins').then((m) => ({ default: m.Plugins })));
const Releases = lazy(() => import('./releases/Releases').then((m) => ({ default: m.Releases })));
const Users = lazy(() => import('./users/Users').then((m) => ({ default: m.Users })));
const UserPage = lazy(() => import('./users/UserPage').then((m) => ({ default: m.UserPage })));
const AuditLog = lazy(() => import('./audit/AuditLog').then((m) => ({ default: m.AuditLog })));
const Operators = lazy(() => import('./operators/Operators').then((m) => ({ default: m.Operators })));
const Content = lazy(() => import('./content/Content').then((m) => ({ default: m.Content })));

interface NavItem {
  href: string;
  label: string;
  permission: Permission;
}

const NAV: NavItem[] = [
  { href: '/', label: 'Dashboard', permission: 'dashboard.view' },
  { href: '/stations', label: 'Stations', permission: 'stations.view' },
  { href: '/users', label: 'Users', permission: 'users.view' },
  { href: '/kyc', label: 'KYC queue', permission: 'kyc.review' },
  { href: '/refunds', label: 'Refunds', permission: 'refunds.review' },
  { href: '/coupons', label: 'Coupons', permission: 'coupons.view' },
  { href: '/content', label: 'Content', permission: 'support.view' },
  { href: '/plugins', label: 'Plugins', permission: 'plugins.view' },
  { href: '/releases', label: 'Plugin releases', permission: 'releases.view' },
  { href: '/audit', label: 'Audit log', permission: 'audit.view' },
  { href: '/operators', label: 'Operators', permission: 'operators.manage' },
];

export function App() {
  // Signing in needs an operator account: `GET /api/admin/me` answers for
  // nobody else, so a session here is always an operator's.
  const current = useStore(session);
  useEffect(() => {
    if (current) startLive();
    else stopLive();
  }, [current !== null]);

  if (!current) return <SignIn />;
  return (
    <Router base="/console">
      <Shell />
    </Router>
  );
}

function Shell() {
  const user = useStore(session, (s) => s?.user);
  const status = useStore(live, (l) => l.status);
  const [location] = useLocation();
  const [menuOpen, setMenuOpen] = useState(false);
  useEffect(() => setMenuOpen(false), [location]);
  const operator = useStore(session, (s) => s?.operator);
  const role = operator?.role;
  const allowed = NAV.filter((item) => can(operator, item.permission));

  return (
    <div class="shell">
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="topbar">
        <button
          type="button"
          class="menu-toggle"
          aria-expanded={menuOpen}
          aria-controls="nav"
          onClick={() => setMenuOpen((o) => !o)}
        >
          ☰ <span class="visually-hidden">Menu</span>
        </button>
        <span class="brand">
          <span aria-hidden="true">⚡</span> powerbank
        </span>
        <span class="live" title="Live updates from the host">
          <StatusBadge status={status === 'live' ? 'connected' : status} />
        </span>
        <span class="who">
          {user?.email ?? user?.phone} <small class="muted">({role})</small>
        </span>
        <button type="button" onClick={() => void signOut()}>
          Sign out
        </button>
      </header>
      <nav id="nav" class={menuOpen ? 'open' : ''} aria-label="Pages">
        <ul>
          {allowed.map((item) => (
            <li key={item.href}>
              <Link
                href={item.href}
                aria-current={
                  (item.href === '/' ? location === '/' : location.startsWith(item.href)) ? 'page' : undefined
                }
              >
                {item.label}
              </Link>
            </li>
          ))}
        </ul>
      </nav>
      <main id="main" tabIndex={-1}>
        <Suspense fallback={<Loading what="page" />}>
          <Switch>
            <Route path="/">
              <Guarded permission="dashboard.view" page={Dashboard} />
            </Route>
            <Route path="/stations">
              <Guarded permission="stations.view" page={Stations} />
            </Route>
            <Route path="/stations/:sn">
              {(params: { sn: string }) => (
                <Guarded permission="stations.view" page={StationPage} props={{ sn: decodeURIComponent(params.sn) }} />
              )}
            </Route>
            <Route path="/users">
              <Guarded permission="users.view" page={Users} />
            </Route>
            <Route path="/users/:id">
              {(params: { id: string }) => (
                <Guarded permission="users.view" page={UserPage} props={{ id: Number(params.id) }} />
              )}
            </Route>
            <Route path="/audit">
              <Guarded permission="audit.view" page={AuditLog} />
            </Route>
            <Route path="/operators">
              <Guarded permission="operators.manage" page={Operators} />
            </Route>
            <Route path="/releases">
              <Guarded permission="releases.view" page={Releases} />
            </Route>
            <Route path="/content">
              <Guarded permission="support.view" page={Content} />
            </Route>
            <Route path="/kyc">
              <Guarded permission="kyc.review" page={KycQueue} />
            </Route>
            <Route path="/refunds">
              <Guarded permission="refunds.review" page={Refunds} />
            </Route>
            <Route path="/coupons">
              <Guarded permission="coupons.view" page={Coupons} />
            </Route>
            <Route path="/plugins">
              <Guarded permission="plugins.view" page={Plugins} />
            </Route>
            <Route>
              <p>
                No such page. <Link href="/">Back to the dashboard</Link>
              </p>
            </Route>
          </Switch>
        </Suspense>
      </main>
    </div>
  );
}

/** A page the operator's role may see, or a refusal. */
function Guarded<P extends object>({
  permission,
  page: Page,
  props,
}: {
  permission: Permission;
  page: ComponentType<P>;
  props?: P;
}) {
  const operator = useStore(session, (s) => s?.operator);
  return can(operator, permission) ? <Page {...((props ?? {}) as P)} /> : <Forbidden />;
}

function Forbidden() {
  return <p role="alert">Your role does not include this page.</p>;
}
