// @tillwatch/rules: the pure rule engine shared by the live detector and `tillwatch backtest`.
export {
  RULE_IDS,
  RULE_VERSIONS,
  ACTION_TARGETS,
  RulesConfigError,
  defaultRulesConfig,
  defaultStageConfig,
  type StageConfig,
  type SyncIncidentConfig,
  type GovernorConfig,
  loadRulesConfig,
  parseRulesConfig,
  type ParseRulesOptions,
  resolveRules,
  resolveVariant,
  type RuleId,
  type RulesConfig,
  type RulesSection,
  type RuleOverrides,
  type RuleCommon,
  type DuplicateChargeConfig,
  type AbnormalAmountConfig,
  type SyncLagConfig,
  type SequenceGapConfig,
  type RefundWithoutSaleConfig,
  type RefundExceedsSaleConfig,
  type TerminalOfflineConfig,
  type UploadBacklogConfig,
  type EngineSettings,
  type PolicyAction,
  type ConfigIssue,
  type ResolvedRules,
  type RuleMode,
  type ShadowSection,
} from './config.js';
export { RULES } from './rules/registry.js';
export type { RuleDefinition, RuleInstance, EngineCore } from './rules/types.js';
export { createRuleEngine } from './engine.js';
export { alertId, actionId, heartbeatEventId, isHeartbeatEventId } from './ids.js';
export { MedianSample } from './median.js';
export { createLineParser, type ParsedLine } from './jsonl.js';
export { createBacktest, backtestLines, isHeartbeat, isRejected, redactPans, type Backtest, type BacktestInput, type BacktestSummary, type RejectedLine } from './backtest.js';
export type {
  EngineOptions,
  EntityChange,
  EngineOutput,
  EngineStats,
  MerchantSnapshot,
  TerminalSnapshot,
  SaleSnapshot,
  RefundSnapshot,
  GapSnapshot,
  RuleEngine,
  EntitySink,
} from './types.js';
export { FIELD_NAMES, ObjectStateWriter, fieldKey, fieldKeys, type FieldKey, type StateWriter } from './state-writer.js';
export { createChangelogView, type ChangelogView, type ChangelogValue, type ChangelogValueSink, type SaleEntry } from './changelog.js';
