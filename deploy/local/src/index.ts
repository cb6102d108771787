// @tillwatch/local-stack: Kafka (KRaft) and Apicurio Registry from Maven Central, run without Docker.
export { createLocalStack } from './stack.js';
export type { DownOptions, FetchResult, LocalStack, StackStatus, UpResult } from './stack.js';
export type { KafkaOptions, LocalStackOptions, LogLevel, RegistryOptions, StackLogger } from './config.js';
export { DEFAULTS } from './config.js';
export type { ComponentName, ComponentState, ComponentStatus, StartResult, StopResult } from './component.js';
export { CCOMPAT_PATH, registryProperties } from './registry.js';
export { formatStatus, startStackForTests } from './helpers.js';
export {
  ArtifactFetchError,
  DataIncompatibleError,
  JavaNotFoundError,
  LocalStackError,
  MavenNotFoundError,
  PortInUseError,
  ProcessStartError,
  ProcessStopError,
  ReadinessTimeoutError,
  StackLockedError,
} from './errors.js';
export type { LocalStackErrorCode } from './errors.js';
