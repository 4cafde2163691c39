// A value that components can watch: the few pieces of app-wide state
// (session, live feed) live in one of these each.
import { useEffect, useState } from 'preact/hooks';

export class Store<T> {
  private listeners = new Set<(value: T) => void>();
  constructor(private value: T) {}

  get(): T {
    return this.value;
  }

  set(value: T): void {
    this.value = value;
    for (const listener of this.listeners) listener(value);
  }

  subscribe(listener: (value: T) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}

/** Re-renders the component when the store's value (or the selected part) changes. */
export function useStore<T, S = T>(store: Store<T>, select: (value: T) => S = (v) => v as unknown as S): S {
  const [selected, setSelected] = useState(() => select(store.get()));
  useEffect(() => {
    setSelected(() => select(store.get()));
    return store.subscribe((value) => setSelected(() => select(value)));
    // The selector is expected to be stable in meaning; re-subscribing on
    // every render would be wasted work.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [store]);
  return selected;
}
