// Contract objects used by the tests. Times are epoch ms, recent so TTLs do not drop them on insert.
import type { Action, Alert, DeadLetter, Transaction } from '@tillwatch/schemas';

export const T0 = Date.UTC(2026, 10, 20, 10, 0, 0, 123);

export function transaction(overrides: Partial<Transaction> = {}): Transaction {
  return {
    event_id: '3f1c7a52-8a7e-4c89-9d10-0a2b3c4d5e6f',
    txn_id: 'txn-0001',
    kind: 'REFUND',
    status: 'APPROVED',
    terminal_id: 'term-001',
    merchant_id: 'merch-01',
    card_token: 'tok_abc123',
    amount_minor: 123456789012,
    currency: 'EUR',
    terminal_seq: 4242,
    original_txn_id: 'txn-0000',
    event_time: T0 - 3_600_000,
    received_time: T0,
    ...overrides,
  };
}

export function alert(overrides: Partial<Alert> = {}): Alert {
  return {
    alert_id: 'al-duplicate_charge-1-abcdef',
    rule: 'duplicate_charge',
    rule_version: 1,
    rules_version: 1,
    severity: 'high',
    terminal_id: 'term-001',
    merchant_id: 'merch-01',
    card_token: null,
    event_ids: ['e-1', 'e-2'],
    window_start: T0 - 600_000,
    window_end: T0 - 1,
    detected_at: T0,
    summary: 'Card tok_abc123 was charged 12.50 EUR twice within 3 minutes.',
    details: { amount_minor: 1250, gap_ms: 180_000, ratio: 0.125 },
    ...overrides,
  };
}

export function action(overrides: Partial<Action> = {}): Action {
  return {
    action_id: 'ac-1',
    kind: 'REVIEW_REFUND',
    target_type: 'TRANSACTION',
    target_id: 'txn-0001',
    merchant_id: 'merch-01',
    terminal_id: 'term-001',
    alert_id: 'al-duplicate_charge-1-abcdef',
    rule: 'duplicate_charge',
    reason: 'refund matches no sale',
    issued_at: T0,
    expires_at: T0 + 86_400_000,
    ...overrides,
  };
}

export function deadLetter(overrides: Partial<DeadLetter> = {}): DeadLetter {
  return {
    reason: 'magic byte 0x7b is not 0x00',
    error_class: 'UndecodableRecord',
    stage: 'detector.decode',
    source_topic: 'pos.transactions.v1',
    source_partition: 3,
    source_offset: 9_007_199_254,
    key: Buffer.from('merch-01'),
    value: Buffer.from([0x00, 0xff, 0xfe, 0x7b, 0x0a, 0x22, 0x00]),
    failed_at: T0,
    ...overrides,
  };
}
