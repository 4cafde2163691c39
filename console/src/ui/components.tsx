// Small building blocks every page uses.
import type { ComponentChildren } from 'preact';
import { useEffect, useRef } from 'preact/hooks';

import { ApiFailure } from '../api/client';

export function ErrorBanner({ error }: { error: unknown }) {
  if (!error) return null;
  const failure = error instanceof ApiFailure ? error : null;
  const message = error instanceof Error ? error.message : String(error);
  return (
    <div class="banner error" role="alert">
      <strong>{failure ? failure.code.replaceAll('_', ' ') : 'error'}:</strong> {message}
      {failure?.requestId ? <small> (request {failure.requestId})</small> : null}
    </div>
  );
}

export function Notice({ children }: { children: ComponentChildren }) {
  return (
    <div class="banner ok" role="status">
      {children}
    </div>
  );
}

const STATUS_TONES: Record<string, string> = {
  online: 'good',
  active: 'good',
  approved: 'good',
  processed: 'good',
  connected: 'good',
  occupied: 'good',
  offline: 'bad',
  failed: 'bad',
  rejected: 'bad',
  fault: 'bad',
  maintenance: 'warn',
  pending: 'warn',
  connecting: 'warn',
  reserved: 'warn',
  disabled: 'muted',
  empty: 'muted',
  retired: 'muted',
};

export function StatusBadge({ status }: { status: string }) {
  return <span class={`badge ${STATUS_TONES[status] ?? 'muted'}`}>{status.replaceAll('_', ' ')}</span>;
}

export function Kpi({ id, label, value, hint }: { id: string; label: string; value: ComponentChildren; hint?: string }) {
  return (
    <div class="kpi" data-kpi={id}>
      <div class="kpi-value">{value}</div>
      <div class="kpi-label">{label}</div>
      {hint ? <div class="kpi-hint">{hint}</div> : null}
    </div>
  );
}

/**
 * A modal dialog (the native <dialog>: focus moves into it, Escape closes it).
 * Rendered only while open.
 */
export function Dialog({
  title,
  onClose,
  children,
}: {
  title: string;
  onClose: () => void;
  children: ComponentChildren;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const dialog = ref.current;
    if (dialog && !dialog.open) dialog.showModal();
    return () => dialog?.close();
  }, []);
  return (
    <dialog
      ref={ref}
      aria-labelledby="dialog-title"
      onCancel={(e) => {
        e.preventDefault();
        onClose();
      }}
    >
      <h2 id="dialog-title">{title}</h2>
      {children}
    </dialog>
  );
}

export function PageHeader({ title, children }: { title: string; children?: ComponentChildren }) {
  useEffect(() => {
    document.title = `${title} · powerbank console`;
  }, [title]);
  return (
    <header class="page-header">
      <h1>{title}</h1>
      <div class="page-actions">{children}</div>
    </header>
  );
}

export function Loading({ what }: { what: string }) {
  return (
    <p class="muted" role="status" aria-live="polite">
      Loading {what}…
    </p>
  );
}
