// The rules the engine runs, in this order (their hooks are called in it). Adding a rule: a folder
// src/rules/<rule_id>/ exporting a RuleDefinition, and one line here (see the package README).
import { abnormalAmount } from './abnormal_amount/index.js';
import { duplicateCharge } from './duplicate_charge/index.js';
import { refundAfterDeadline } from './refund_after_deadline/index.js';
import { refundCardMismatch } from './refund_card_mismatch/index.js';
import { refundExceedsSale } from './refund_exceeds_sale/index.js';
import { refundVelocity } from './refund_velocity/index.js';
import { refundWithoutSale } from './refund_without_sale/index.js';
import { sequenceGap } from './sequence_gap/index.js';
import { syncLag } from './sync_lag/index.js';
import { terminalOffline } from './terminal_offline/index.js';
import { uploadBacklog } from './upload_backlog/index.js';
import type { AnyRuleDefinition } from './types.js';

export const RULES = [
  duplicateCharge,
  abnormalAmount,
  syncLag,
  sequenceGap,
  refundWithoutSale,
  refundExceedsSale,
  refundCardMismatch,
  refundAfterDeadline,
  refundVelocity,
  terminalOffline,
  uploadBacklog,
] as const;

type Defs = (typeof RULES)[number];
export type RuleId = Defs['id'];
/** Every rule's parameters (a rule's config type is its definition's `defaults` type). */
export type RulesSection = { [D in Defs as D['id']]: D['defaults'] };

export const RULE_IDS = RULES.map((r) => r.id) as unknown as readonly RuleId[];
export const RULE_BY_ID = Object.fromEntries(RULES.map((r) => [r.id, r])) as unknown as Readonly<Record<RuleId, AnyRuleDefinition>>;
/** Version of each rule's logic; part of every alert (`duplicate_charge@1`) and of its id. */
export const RULE_VERSIONS = Object.fromEntries(RULES.map((r) => [r.id, r.version])) as unknown as Readonly<Record<RuleId, number>>;
