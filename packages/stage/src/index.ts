// @tillwatch/stage: the pipeline's second stage (fleet incidents and the action governor), pure.
export * from './types.js';
export {
  createStageCore,
  ACTIVITY_BUCKET_MS,
  EPISODE_RULES,
  EVIDENCE_TERMINALS,
  FLEET,
  FREEZE_CIRCUIT_OPEN,
  FREEZE_KINDS,
  INCIDENT_NOTIFY_RULES,
  MEMBER_ALERT_RULES,
  SYNC_INCIDENT,
  type CoreSnapshot,
  type StageCore,
  type StageCoreOptions,
  type StageOutput,
  type StageStats,
} from './core.js';
export { createActivityTracker, stageRecordsOf, type ActivityTracker } from './derive.js';
export { alertLine, createBacktestStage, governedActions, type BacktestStage } from './backtest.js';
