// Per-terminal state a rule instance keeps for itself, indexed by the terminal's slot
// (TerminalState.slot, stable while the terminal is registered): a dense array, null = none. One
// array load per event instead of an object per terminal (see the rules README, "State layout").
export class BySlot<T> {
  private readonly items: (T | null)[];

  /** capacity: slots allocated up front (the array grows past it as terminals register). */
  constructor(capacity = 0) {
    this.items = new Array<T | null>(capacity).fill(null);
  }

  get(slot: number): T | null {
    return slot >= 0 && slot < this.items.length ? this.items[slot]! : null;
  }

  set(slot: number, value: T | null): void {
    const a = this.items;
    while (slot >= a.length) a.push(null);
    a[slot] = value;
  }
}
