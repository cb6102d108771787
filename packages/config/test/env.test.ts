import { describe, expect, it } from 'vitest';
import { ConfigError, ConfigErrors, clickhouseConfig, kafkaConfig, parseAll, registryConfig, serviceConfig } from '@tillwatch/config';

describe('environment configuration', () => {
  it('uses local-stack defaults when nothing is set', () => {
    expect(kafkaConfig({})).toMatchObject({ brokers: ['127.0.0.1:9092'], partitions: 6, ssl: false });
    expect(registryConfig({}).url).toBe('http://127.0.0.1:8081/apis/ccompat/v7');
    expect(clickhouseConfig({})).toMatchObject({ url: undefined, database: 'tillwatch' });
  });

  it('reads external infrastructure from variables alone', () => {
    const k = kafkaConfig({ KAFKA_BROKERS: 'b1:9092, b2:9093', TOPIC_PARTITIONS: '12' });
    expect(k.brokers).toEqual(['b1:9092', 'b2:9093']);
    expect(k.partitions).toBe(12);
    expect(clickhouseConfig({ CLICKHOUSE_URL: 'http://ch:8123/' }).url).toBe('http://ch:8123');
  });

  it('names the variable and what was expected', () => {
    expect(() => kafkaConfig({ KAFKA_BROKERS: 'localhost' })).toThrowError(ConfigError);
    expect(() => kafkaConfig({ KAFKA_BROKERS: 'localhost' })).toThrowError(/KAFKA_BROKERS: expected a comma-separated list of host:port/);
    expect(() => registryConfig({ SCHEMA_REGISTRY_URL: 'ftp://x' })).toThrowError(/SCHEMA_REGISTRY_URL: expected a URL/);
    expect(() => clickhouseConfig({ CLICKHOUSE_DATABASE: 'drop table' })).toThrowError(/CLICKHOUSE_DATABASE: expected a database name/);
  });

  it('reports every wrong variable at once', () => {
    try {
      kafkaConfig({ KAFKA_BROKERS: 'x', TOPIC_PARTITIONS: '0' });
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigErrors);
      expect((e as ConfigErrors).errors.map((x) => x.variable)).toEqual(['KAFKA_BROKERS', 'TOPIC_PARTITIONS']);
    }
  });
});

describe('parseAll', () => {
  it('reports the wrong variables of every group in one error', () => {
    const env = { KAFKA_BROKERS: 'nohost', SCHEMA_REGISTRY_URL: 'ftp://x', CLICKHOUSE_DATABASE: 'drop table', HTTP_PORT: 'eighty' };
    try {
      parseAll({ kafka: kafkaConfig, registry: registryConfig, clickhouse: clickhouseConfig, service: (e) => serviceConfig(e, { httpPort: 1 }) }, env);
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigErrors);
      expect((e as ConfigErrors).errors.map((x) => x.variable)).toEqual(['KAFKA_BROKERS', 'SCHEMA_REGISTRY_URL', 'CLICKHOUSE_DATABASE', 'HTTP_PORT']);
    }
  });

  it('returns every group when all are valid', () => {
    const r = parseAll({ kafka: kafkaConfig, registry: registryConfig }, { KAFKA_BROKERS: 'b:1' });
    expect(r.kafka.brokers).toEqual(['b:1']);
    expect(r.registry.url).toBe('http://127.0.0.1:8081/apis/ccompat/v7');
  });
});

describe('Kafka SASL settings: all three or none', () => {
  it('refuses credentials without a mechanism, and a mechanism without credentials, naming the variable; the password is never echoed', () => {
    expect(() => kafkaConfig({ KAFKA_SASL_USERNAME: 'u', KAFKA_SASL_PASSWORD: 'secret-pw' })).toThrow('KAFKA_SASL_MECHANISM: expected plain, scram-sha-256 or scram-sha-512 when KAFKA_SASL_USERNAME is set, got nothing (unset)');
    expect(() => kafkaConfig({ KAFKA_SASL_PASSWORD: 'secret-pw' })).toThrow(/KAFKA_SASL_MECHANISM: expected .* when KAFKA_SASL_PASSWORD is set/);
    const both = (() => {
      try {
        kafkaConfig({ KAFKA_SASL_MECHANISM: 'plain' });
      } catch (e) {
        return (e as Error).message;
      }
      return '';
    })();
    expect(both).toContain('KAFKA_SASL_USERNAME: expected a user name with KAFKA_SASL_MECHANISM=plain');
    expect(both).toContain('KAFKA_SASL_PASSWORD: expected a password with KAFKA_SASL_MECHANISM=plain');
    expect(() => kafkaConfig({ KAFKA_SASL_MECHANISM: 'plain', KAFKA_SASL_USERNAME: 'u', KAFKA_SASL_PASSWORD: 'secret-pw' })).not.toThrow();
    expect(() => kafkaConfig({})).not.toThrow();
    try {
      kafkaConfig({ KAFKA_SASL_MECHANISM: 'plain', KAFKA_SASL_PASSWORD: 'secret-pw' });
    } catch (e) {
      expect((e as Error).message).not.toContain('secret-pw');
    }
  });
});
