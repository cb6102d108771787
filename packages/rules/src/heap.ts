// Binary min-heap with a caller-supplied strict ordering. Used for sequence-gap timers, whose order
// (due time, terminal, merchant, seq) is total, so firing order never depends on insertion order.

export class MinHeap<T> {
  private readonly items: T[] = [];
  constructor(private readonly less: (a: T, b: T) => boolean) {}

  get size(): number {
    return this.items.length;
  }

  peek(): T | undefined {
    return this.items[0];
  }

  push(item: T): void {
    const a = this.items;
    a.push(item);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(a[i]!, a[p]!)) break;
      [a[i], a[p]] = [a[p]!, a[i]!];
      i = p;
    }
  }

  pop(): T | undefined {
    const a = this.items;
    const top = a[0];
    const last = a.pop();
    if (a.length > 0 && last !== undefined) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && this.less(a[l]!, a[m]!)) m = l;
        if (r < a.length && this.less(a[r]!, a[m]!)) m = r;
        if (m === i) break;
        [a[i], a[m]] = [a[m]!, a[i]!];
        i = m;
      }
    }
    return top;
  }

  /** Drops every item matching `drop` and restores the heap (used when a merchant's state is replaced). */
  removeWhere(drop: (item: T) => boolean): void {
    const keep = this.items.filter((x) => !drop(x));
    this.items.length = 0;
    for (const x of keep) this.push(x);
  }
}

/** An item that knows its position, so it can be removed from the heap in O(log n). */
export interface HeapItem {
  /** Position in the heap, -1 when not in it. */
  heapIndex: number;
}

/**
 * Min-heap with removal of arbitrary items. Sequence-gap timers use it so that a gap filled in time
 * leaves the heap at once: the heap holds only open gaps, not every gap of the last timeout period.
 */
export class IndexedMinHeap<T extends HeapItem> {
  private readonly items: T[] = [];
  constructor(private readonly less: (a: T, b: T) => boolean) {}

  get size(): number {
    return this.items.length;
  }

  peek(): T | undefined {
    return this.items[0];
  }

  push(item: T): void {
    item.heapIndex = this.items.length;
    this.items.push(item);
    this.up(item.heapIndex);
  }

  pop(): T | undefined {
    const top = this.items[0];
    if (top !== undefined) this.remove(top);
    return top;
  }

  remove(item: T): void {
    const i = item.heapIndex;
    if (i < 0) return;
    const a = this.items;
    const last = a.pop()!;
    item.heapIndex = -1;
    if (last === item) return;
    a[i] = last;
    last.heapIndex = i;
    this.down(i);
    this.up(last.heapIndex);
  }

  clear(): void {
    for (const x of this.items) x.heapIndex = -1;
    this.items.length = 0;
  }

  private up(i: number): void {
    const a = this.items;
    const x = a[i]!;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const y = a[p]!;
      if (!this.less(x, y)) break;
      a[i] = y;
      y.heapIndex = i;
      i = p;
    }
    a[i] = x;
    x.heapIndex = i;
  }

  private down(i: number): void {
    const a = this.items;
    const n = a.length;
    const x = a[i]!;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && this.less(a[r]!, a[l]!) ? r : l;
      const y = a[c]!;
      if (!this.less(y, x)) break;
      a[i] = y;
      y.heapIndex = i;
      i = c;
    }
    a[i] = x;
    x.heapIndex = i;
  }
}
