export { createClickHouse, type ClickHouse, type ClickHouseOptions } from './factory.js';
export { migrate, loadMigrations, migrationChecksum, type MigrateOptions, type MigrateResult, type MigrationFile } from './migrate.js';
export { createBatchWriter, contentToken, type BatchWriter, type BatchWriterOptions, type FlushInfo, type FlushOptions, type RejectedRow } from './writer.js';
export {
  toTransactionRow,
  toAlertRow,
  toActionRow,
  toActionDecisionRow,
  type ActionDecisionRow,
  toDeadLetterRow,
  toAlertTriageRow,
  toAlertUpdateRow,
  toRefundReasonRow,
  fromAlertUpdateRow,
  fromRefundReasonRow,
  fromTransactionRow,
  fromAlertRow,
  fromActionRow,
  fromDeadLetterRow,
  toDateTime64,
  fromDateTime64,
  ContractColumns,
  TriageStatusValues,
  RowValueError,
  type TransactionRow,
  type AlertRow,
  type AlertUpdateRow,
  type RefundReasonRow,
  type ActionRow,
  type DeadLetterRow,
  type AlertTriage,
  type AlertTriageRow,
  type TriageStatus,
} from './rows.js';
export {
  ClickHouseLayerError,
  ClickHouseUnavailableError,
  ClickHouseQueryError,
  ClickHouseDataError,
  ClickHouseConfigError,
  EmbeddedPathConflictError,
  MigrationChecksumError,
  MigrationFileError,
  mapClickHouseError,
  classifyClickHouseError,
  type ClickHouseErrorClass,
} from './errors.js';
export { splitStatements, quoteIdentifier, qualifiedName, renderMigrationSql } from './sql.js';
export { openEmbeddedPaths } from './embedded.js';
