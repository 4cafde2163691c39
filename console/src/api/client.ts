// The one way the console talks to the host: a typed client over the
// generated API types, with the operator's session kept in memory.
//
// Why in memory: the access token (15 min) and the refresh token live only in
// this page's JavaScript, never in a cookie or in storage. The browser never
// attaches them on its own, so another site cannot make it send an
// authenticated request (no CSRF), and nothing is left on a shared computer
// after the tab closes. The price is signing in again after a reload.
import createClient from 'openapi-fetch';

import { Store } from '../store';
import type { ErrorBody, MeOut, paths, UserOut } from './types';

export interface Session {
  access: string;
  refresh: string;
  /** Milliseconds since the epoch when the access token expires. */
  expiresAt: number;
  user: UserOut;
  /** The operator's role and the routes it may call (`GET /api/admin/me`): what the console shows. */
  operator: MeOut;
}

export const session = new Store<Session | null>(null);
/** Why the operator was signed out, shown on the sign-in page. */
export const signedOutReason = new Store<string | null>(null);

/** An answer in the API's error shape (or a network failure made to look like one). */
export class ApiFailure extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly requestId: string | null = null,
    readonly details: unknown = null,
  ) {
    super(message);
  }
}

function isErrorBody(value: unknown): value is ErrorBody {
  return typeof value === 'object' && value !== null && 'error' in value;
}

export function failureOf(status: number, body: unknown): ApiFailure {
  if (isErrorBody(body)) {
    const e = body.error;
    return new ApiFailure(status, e.code, e.message, e.request_id ?? null, e.details ?? null);
  }
  return new ApiFailure(status, 'unexpected', `the server answered HTTP ${status}`);
}

/** Refreshes are single-flight: a refresh token works once, and a replayed one ends the session. */
let refreshing: Promise<boolean> | null = null;

export function refreshSession(): Promise<boolean> {
  refreshing ??= rotate().finally(() => {
    refreshing = null;
  });
  return refreshing;
}

async function rotate(): Promise<boolean> {
  const current = session.get();
  if (!current) return false;
  const response = await fetch('/api/auth/refresh', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ refresh_token: current.refresh }),
  });
  if (!response.ok) {
    endSession('Your session ended. Please sign in again.');
    return false;
  }
  const pair = (await response.json()) as paths['/api/auth/refresh']['post']['responses'][200]['content']['application/json'];
  if (session.get() !== current) return session.get() !== null;
  session.set({ ...current, access: pair.access_token, refresh: pair.refresh_token, expiresAt: Date.now() + pair.expires_in * 1000 });
  return true;
}

export function endSession(reason: string | null): void {
  signedOutReason.set(reason);
  session.set(null);
}

/** An access token good for at least 30 more seconds, refreshing first if needed. */
export async function accessToken(): Promise<string | null> {
  const current = session.get();
  if (!current) return null;
  if (current.expiresAt - Date.now() < 30_000) await refreshSession();
  return session.get()?.access ?? null;
}

async function authorisedFetch(request: Request): Promise<Response> {
  const retry = request.clone();
  const token = await accessToken();
  if (token) request.headers.set('authorization', `Bearer ${token}`);
  const response = await fetch(request);
  if (response.status !== 401 || !token) return response;
  // Expired or revoked: one refresh, one retry.
  if (!(await refreshSession())) return response;
  const fresh = session.get();
  if (fresh) retry.headers.set('authorization', `Bearer ${fresh.access}`);
  return fetch(retry);
}

export const api = createClient<paths>({ baseUrl: '', fetch: authorisedFetch });

/** The data of a successful call; throws [`ApiFailure`] otherwise. */
export async function ok<T>(call: Promise<{ data?: T; error?: unknown; response: Response }>): Promise<T> {
  let result: { data?: T; error?: unknown; response: Response };
  try {
    result = await call;
  } catch (e) {
    throw new ApiFailure(0, 'network', `cannot reach the server (${e instanceof Error ? e.message : String(e)})`);
  }
  if (!result.response.ok || result.error !== undefined) throw failureOf(result.response.status, result.error);
  return result.data as T;
}

export async function signIn(email: string, password: string): Promise<void> {
  const body = await ok(api.POST('/api/admin/login', { body: { email, password } }));
  // The operator role (and so what to show) comes from the API's own list of
  // the routes this operator may call.
  const operator = await ok(
    api.GET('/api/admin/me', { headers: { authorization: `Bearer ${body.access_token}` } }),
  );
  performance.mark('signed-in');
  signedOutReason.set(null);
  session.set({
    access: body.access_token,
    refresh: body.refresh_token,
    expiresAt: Date.now() + body.expires_in * 1000,
    user: body.user,
    operator,
  });
}

export async function signOut(): Promise<void> {
  // The session ends here whatever the server says; the server side ends too
  // when it answers (its refresh token and access tokens stop working).
  try {
    await api.POST('/api/auth/logout');
  } finally {
    endSession(null);
  }
}

/** Fetches a file only operators may see (KYC documents) as an object URL for an <img>. */
export async function privateFileUrl(url: string): Promise<string> {
  // Upload URLs are absolute (the host's public URL); fetch them from this origin.
  const path = new URL(url, location.origin).pathname;
  const token = await accessToken();
  const response = await fetch(path, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  if (!response.ok) {
    let body: unknown = null;
    try {
      body = await response.json();
    } catch {
      // not JSON: the status says enough
    }
    throw failureOf(response.status, body);
  }
  return URL.createObjectURL(await response.blob());
}
