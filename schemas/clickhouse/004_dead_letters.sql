-- Records that could not be processed (contract: schemas/avro/dead-letter.avsc), with their raw
-- bytes, so nothing is silently dropped and everything can be replayed.
-- key/value are stored base64-encoded: JSONEachRow strings cannot carry arbitrary bytes. The ALIAS
-- columns give the raw bytes back in SQL.
-- ReplacingMergeTree by (source_topic, source_partition, source_offset, stage): the same record
-- failing again at the same stage (redelivery, retry) is one dead letter, the newest kept.
CREATE TABLE IF NOT EXISTS {db}.dead_letters
(
    reason           String,
    error_class      LowCardinality(String) COMMENT 'UndecodableRecord, UnknownSchemaId, InvalidValue, ...',
    stage            LowCardinality(String) COMMENT 'detector.decode, detector.validate, sink.write, ...',
    source_topic     LowCardinality(String),
    source_partition Int32,
    source_offset    Int64,
    key_base64       Nullable(String),
    value_base64     Nullable(String),
    failed_at        DateTime64(3, 'UTC'),
    ingested_at      DateTime64(3, 'UTC') DEFAULT now64(3),
    key              Nullable(String) ALIAS base64Decode(key_base64),
    value            Nullable(String) ALIAS base64Decode(value_base64)
)
ENGINE = ReplacingMergeTree(ingested_at)
PARTITION BY toYYYYMM(failed_at)
ORDER BY (source_topic, source_partition, source_offset, stage)
TTL toDateTime(failed_at) + INTERVAL 365 DAY
SETTINGS non_replicated_deduplication_window = 1000;
