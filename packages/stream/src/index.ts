// First: replaces kafkajs internals before kafkajs itself loads (kafka/kafkajs-patches.ts).
export * from './kafka/kafkajs-patches.js';
export * from './errors.js';
export * from './dead-letter.js';
export * from './registry/client.js';
export * from './registry/avro-serde.js';
export * from './kafka/client.js';
export * from './provision.js';
export * from './processor/task.js';
export * from './processor/changelog.js';
export * from './processor/copartitioned-assigner.js';
export * from './processor/transactional-processor.js';
export * from './processor/lag-monitor.js';
export * from './scoped-topics.js';
export * from './sleep.js';
export * from './reachability.js';
export * from './lifecycle.js';
