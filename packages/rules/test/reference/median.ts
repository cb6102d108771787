// Naive median over the last `capacity` values (reference model).
export class MedianSample {
  private ring: number[] = []; private sorted: number[] = [];
  constructor(readonly capacity: number) {}
  get size(): number { return this.ring.length; }
  median(): number { const n = this.sorted.length; if (n === 0) return NaN; const m = n >> 1; return n & 1 ? this.sorted[m]! : (this.sorted[m - 1]! + this.sorted[m]!) / 2; }
  add(v: number): void { this.ring.push(v); if (this.ring.length > this.capacity) { const old = this.ring.shift()!; this.sorted.splice(this.sorted.indexOf(old), 1); } let i = 0; while (i < this.sorted.length && this.sorted[i]! < v) i++; this.sorted.splice(i, 0, v); }
}
