// The sink's side of a ClickHouse rejection, mocked only at the ClickHouse port: the writer bisects,
// and what it hands over becomes dead letters that carry the source coordinates and raw bytes.
import { describe, expect, it } from 'vitest';
import { ClickHouseDataError, createBatchWriter, type ClickHouse, type RejectedRow } from '@tillwatch/clickhouse';
import { toDeadLetter, type DeadLetterSource } from '@tillwatch/stream';
import { CLICKHOUSE_REJECTED, SINK_WRITE_STAGE, unwritableRows } from '@tillwatch/sink';

/** ClickHouse at the port: refuses any block holding an action kind its Enum8 does not know. */
function actionsTable() {
  const written: string[] = [];
  const client = {
    insert: async (p: { values: { action_id: string; kind: string }[] }) => {
      const bad = p.values.find((r) => r.kind === 'NOTIFY_ACQUIRER');
      if (bad) throw Object.assign(new Error(`Unknown element 'NOTIFY_ACQUIRER' for enum: (while reading the value of key kind)`), { code: '691', type: 'UNKNOWN_ELEMENT_OF_ENUM' });
      written.push(...p.values.map((r) => r.action_id));
      return {};
    },
  };
  return { ch: { client: client as unknown as ClickHouse['client'], table: (n: string) => `\`db\`.\`${n}\`` }, written };
}

const source = (offset: number): DeadLetterSource => ({ topic: 'pos.actions.notify.v1', partition: 3, offset: String(offset), key: Buffer.from('M1'), value: Buffer.from([0, 0, 0, 0, 7, offset]) });

describe('sink: rejected rows', () => {
  it('bisection output becomes dead letters with stage sink.write, the ClickHouse reason and the raw record', async () => {
    const table = actionsTable();
    const handed: ReturnType<typeof unwritableRows>[] = [];
    const w = createBatchWriter<object, DeadLetterSource>({ ch: table.ch, table: 'actions', maxRows: 1000, maxDelayMs: 60_000, onRejected: async (r, t) => void handed.push(unwritableRows(r, t)) });
    for (let i = 0; i < 5; i++) await w.add({ action_id: `act-${i}`, kind: i === 3 ? 'NOTIFY_ACQUIRER' : 'NOTIFY_MERCHANT' }, source(100 + i));
    await w.flush();
    expect(table.written.sort()).toEqual(['act-0', 'act-1', 'act-2', 'act-4']);
    expect(handed).toHaveLength(1);
    const [u] = handed[0]!;
    expect(u).toMatchObject({ table: 'actions', errorClass: CLICKHOUSE_REJECTED, reasonClass: 'UNKNOWN_ELEMENT_OF_ENUM', source: source(103) });
    expect(u!.reason).toMatch(/ClickHouse error 691 \(UNKNOWN_ELEMENT_OF_ENUM\): Unknown element 'NOTIFY_ACQUIRER'/);
    // What goes on the DLQ topic (the detector's helper, the same contract).
    expect(toDeadLetter(u!.source, { errorClass: u!.errorClass, reason: u!.reason, stage: SINK_WRITE_STAGE }, 42)).toEqual({
      reason: u!.reason, error_class: 'ClickHouseRejected', stage: 'sink.write', source_topic: 'pos.actions.notify.v1', source_partition: 3, source_offset: 103,
      key: Buffer.from('M1'), value: Buffer.from([0, 0, 0, 0, 7, 103]), failed_at: 42,
    });
  });

  it('names an error without a symbolic type by its code, and refuses a row without source coordinates', () => {
    const error = new ClickHouseDataError('ClickHouse error 6: Cannot parse text', { code: 6 });
    const r: RejectedRow<object, DeadLetterSource> = { row: {}, meta: source(1), error };
    expect(unwritableRows([r], 'alerts')[0]?.reasonClass).toBe('CODE_6');
    expect(() => unwritableRows([{ ...r, meta: undefined }], 'alerts')).toThrow(/no source coordinates/);
  });
});
