// Placeholder replaced once the local stack lands: integration tests need Kafka and the registry.
export default async function setup(): Promise<void> {}
