// Sortable tables over cursor-paginated API lists.
//
// The API pages with opaque cursors (newest first) and does not sort, so a
// table sorts the page it shows; "Next"/"Previous" walk the cursors.
import type { ComponentChildren } from 'preact';
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';

import type { Page } from '../api/types';
import { ErrorBanner, Loading } from './components';

export interface Column<T> {
  key: string;
  label: string;
  render: (row: T) => ComponentChildren;
  /** The value to sort by; columns without one are not sortable. */
  sort?: (row: T) => string | number | null | undefined;
  class?: string;
}

type Direction = 'ascending' | 'descending';

export function DataTable<T>({
  columns,
  rows,
  rowKey,
  caption,
  empty = 'Nothing here.',
}: {
  columns: Column<T>[];
  rows: T[];
  rowKey: (row: T) => string | number;
  caption: string;
  empty?: string;
}) {
  const [sort, setSort] = useState<{ key: string; direction: Direction } | null>(null);
  const sorted = useMemo(() => {
    const column = sort && columns.find((c) => c.key === sort.key);
    if (!sort || !column?.sort) return rows;
    const by = column.sort;
    const factor = sort.direction === 'ascending' ? 1 : -1;
    return [...rows].sort((a, b) => {
      const x = by(a);
      const y = by(b);
      if (x === y) return 0;
      if (x === null || x === undefined) return 1;
      if (y === null || y === undefined) return -1;
      return (x < y ? -1 : 1) * factor;
    });
  }, [rows, sort, columns]);

  const toggle = (key: string) =>
    setSort((current) =>
      current?.key === key
        ? { key, direction: current.direction === 'ascending' ? 'descending' : 'ascending' }
        : { key, direction: 'ascending' },
    );

  return (
    <div class="table-wrap">
      <table>
        <caption class="visually-hidden">{caption}</caption>
        <thead>
          <tr>
            {columns.map((c) => (
              <th
                scope="col"
                key={c.key}
                class={c.class}
                aria-sort={sort?.key === c.key ? sort.direction : c.sort ? 'none' : undefined}
              >
                {c.sort ? (
                  <button type="button" class="sort" onClick={() => toggle(c.key)}>
                    {c.label}
                    <span aria-hidden="true">
                      {sort?.key === c.key ? (sort.direction === 'ascending' ? ' ▲' : ' ▼') : ' ↕'}
                    </span>
                  </button>
                ) : (
                  c.label
                )}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {sorted.length === 0 ? (
            <tr>
              <td colSpan={columns.length} class="muted">
                {empty}
              </td>
            </tr>
          ) : (
            sorted.map((row) => (
              <tr key={rowKey(row)} data-row={rowKey(row)}>
                {columns.map((c) => (
                  <td key={c.key} class={c.class} data-label={c.label}>
                    {c.render(row)}
                  </td>
                ))}
              </tr>
            ))
          )}
        </tbody>
      </table>
    </div>
  );
}

export interface CursorPage<T> {
  rows: T[];
  setRows: (update: (rows: T[]) => T[]) => void;
  loading: boolean;
  error: unknown;
  pageNumber: number;
  hasNext: boolean;
  hasPrevious: boolean;
  next: () => void;
  previous: () => void;
  reload: () => void;
}

/**
 * One page of a cursor-paginated list at a time. `load` fetches the page at
 * a cursor (undefined: the first); changing `deps` starts over.
 */
export function useCursorPage<T>(
  load: (cursor: string | undefined) => Promise<Page<T>>,
  deps: unknown[],
): CursorPage<T> {
  // cursors[i] is the cursor of page i (page 0 has none).
  const [cursors, setCursors] = useState<(string | undefined)[]>([undefined]);
  const [rows, setRowsState] = useState<T[]>([]);
  const [nextCursor, setNextCursor] = useState<string | null>(null);
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<unknown>(null);
  const [generation, setGeneration] = useState(0);
  const pageNumber = cursors.length - 1;

  // The latest `load` is used; `deps` (filters) decide when to start over.
  const loader = useRef(load);
  loader.current = load;
  const depsKey = JSON.stringify(deps);
  const lastDeps = useRef(depsKey);
  useEffect(() => {
    if (lastDeps.current === depsKey) return;
    lastDeps.current = depsKey;
    setCursors([undefined]);
  }, [depsKey]);

  useEffect(() => {
    let current = true;
    setLoading(true);
    loader
      .current(cursors[cursors.length - 1])
      .then((page) => {
        if (!current) return;
        setRowsState(page.results);
        setNextCursor(page.next_cursor ?? null);
        setError(null);
      })
      .catch((e: unknown) => current && setError(e))
      .finally(() => current && setLoading(false));
    return () => {
      current = false;
    };
  }, [cursors, generation]);

  return {
    rows,
    setRows: (update) => setRowsState(update),
    loading,
    error,
    pageNumber,
    hasNext: nextCursor !== null,
    hasPrevious: pageNumber > 0,
    next: () => nextCursor !== null && setCursors((c) => [...c, nextCursor]),
    previous: () => setCursors((c) => (c.length > 1 ? c.slice(0, -1) : c)),
    reload: () => setGeneration((g) => g + 1),
  };
}

export function Pager<T>({ page, what }: { page: CursorPage<T>; what: string }) {
  return (
    <nav class="pager" aria-label={`${what} pages`}>
      <button type="button" onClick={page.previous} disabled={!page.hasPrevious || page.loading}>
        ← Previous
      </button>
      <span>Page {page.pageNumber + 1}</span>
      <button type="button" onClick={page.next} disabled={!page.hasNext || page.loading}>
        Next →
      </button>
      {page.loading ? <Loading what={what} /> : null}
      <ErrorBanner error={page.error} />
    </nav>
  );
}
