import { useEffect, useState } from 'preact/hooks';

import { signedOutReason, signIn } from '../api/client';
import { ErrorBanner } from '../ui/components';
import { useStore } from '../store';

export function SignIn() {
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const reason = useStore(signedOutReason);
  useEffect(() => {
    if (performance.getEntriesByName('signin-ready').length === 0) performance.mark('signin-ready');
  }, []);

  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    performance.mark('signin-submitted');
    try {
      await signIn(email.trim(), password);
    } catch (failure) {
      setError(failure);
      setBusy(false);
    }
  };

  return (
    <main class="signin" id="main">
      <form onSubmit={submit} aria-labelledby="signin-title">
        <h1 id="signin-title">
          <span class="logo" aria-hidden="true">
            ⚡
          </span>{' '}
          powerbank console
        </h1>
        <p class="muted">Sign in with your operator account.</p>
        {reason ? (
          <div class="banner warn" role="status">
            {reason}
          </div>
        ) : null}
        <ErrorBanner error={error} />
        <label>
          Email
          <input
            type="email"
            name="email"
            autoComplete="username"
            required
            value={email}
            onInput={(e) => setEmail(e.currentTarget.value)}
          />
        </label>
        <label>
          Password
          <input
            type="password"
            name="password"
            autoComplete="current-password"
            required
            value={password}
            onInput={(e) => setPassword(e.currentTarget.value)}
          />
        </label>
        <button type="submit" class="primary" disabled={busy}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
    </main>
  );
}
