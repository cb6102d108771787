import { describe, expect, it } from 'vitest';
import { defaultGroupId, topicNames } from '@tillwatch/schemas';

describe('names under TOPIC_PREFIX', () => {
  it("a service's default consumer group carries the prefix its topics carry (environments on one cluster share no group)", () => {
    expect(defaultGroupId('detector')).toBe('tillwatch-detector');
    expect(defaultGroupId('sink', '')).toBe('tillwatch-sink');
    expect(defaultGroupId('stage', 'acme')).toBe('acme.tillwatch-stage');
    expect(defaultGroupId('detector', 'acme.')).toBe('acme.tillwatch-detector');
    expect(topicNames('acme').transactions).toBe('acme.pos.transactions.v1');
    expect(defaultGroupId('detector', 'a')).not.toBe(defaultGroupId('detector', 'b'));
  });
});
