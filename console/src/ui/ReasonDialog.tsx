// A confirmation that needs a reason (kept in the audit log): suspend, ban,
// role changes and the like. The API answers 400 without one; the form asks
// first.
import type { ComponentChildren } from 'preact';
import { useState } from 'preact/hooks';

import { Dialog, ErrorBanner } from './components';

export function ReasonDialog({
  title,
  confirm,
  danger = false,
  children,
  onClose,
  onSubmit,
}: {
  title: string;
  confirm: string;
  danger?: boolean;
  children?: ComponentChildren;
  onClose: () => void;
  /** Does the change; a thrown failure is shown in the dialog. */
  onSubmit: (reason: string) => Promise<void>;
}) {
  const [reason, setReason] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await onSubmit(reason.trim());
    } catch (failure) {
      setError(failure);
      setBusy(false);
    }
  };
  return (
    <Dialog title={title} onClose={onClose}>
      <form onSubmit={submit}>
        {children}
        <label>
          Reason (kept in the audit log)
          <textarea required maxLength={500} rows={3} value={reason} onInput={(e) => setReason(e.currentTarget.value)} />
        </label>
        <ErrorBanner error={error} />
        <div class="dialog-actions">
          <button type="button" onClick={onClose} disabled={busy}>
            Cancel
          </button>
          <button type="submit" class={danger ? 'danger' : 'primary'} disabled={busy}>
            {confirm}
          </button>
        </div>
      </form>
    </Dialog>
  );
}

/** A random key for a request that must happen once however often it is sent (hex, 32 characters). */
export function idempotencyKey(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}
