// createRulesSwitch: a new rules version applies only at the first call of a batch (after the previous
// batch's end), never between the calls of one batch, and once per version.
import { describe, expect, it } from 'vitest';
import { parseRulesConfig, type RulesConfig } from '@tillwatch/rules';
import { createRulesSwitch } from '../src/live.js';

describe('createRulesSwitch', () => {
  it('switches at the first call of a batch only, once per version', () => {
    const v1 = parseRulesConfig({ version: 1 });
    const v2 = parseRulesConfig({ version: 2 });
    let inForce: RulesConfig = v1;
    const applied: number[] = [];
    const sw = createRulesSwitch(() => inForce, (c) => applied.push(c.version));
    sw.sync(); // batch 1, first call: still v1
    inForce = v2; // arrives between two calls of batch 1
    sw.sync();
    sw.sync();
    expect(applied).toEqual([]); // not mid-batch
    expect(sw.applied().version).toBe(1); // what the batch in progress runs under
    sw.batchEnded();
    sw.sync(); // batch 2, first call
    expect(applied).toEqual([2]);
    expect(sw.applied().version).toBe(2);
    sw.batchEnded();
    sw.sync();
    expect(applied).toEqual([2]); // once per version
    // A restore ends the batch too (batchEnded), so the next call may switch.
    inForce = parseRulesConfig({ version: 3 });
    sw.batchEnded();
    sw.sync();
    expect(applied).toEqual([2, 3]);
  });
});
