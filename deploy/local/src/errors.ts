// Error classes of the local stack. Each one says what failed and what to do about it, so the CLI can
// print `error.message` and exit non-zero without a stack trace.

export type LocalStackErrorCode =
  | 'JAVA_MISSING'
  | 'MAVEN_MISSING'
  | 'FETCH_FAILED'
  | 'PORT_IN_USE'
  | 'START_FAILED'
  | 'NOT_READY'
  | 'STOP_FAILED'
  | 'LOCKED'
  | 'DATA_INCOMPATIBLE';

export class LocalStackError extends Error {
  override readonly name: string = 'LocalStackError';
  constructor(
    readonly code: LocalStackErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** No Java runtime (of at least `minMajor`) was found. */
export class JavaNotFoundError extends LocalStackError {
  override readonly name = 'JavaNotFoundError';
  constructor(
    readonly minMajor: number,
    readonly purpose: string,
    readonly tried: readonly string[],
  ) {
    super(
      'JAVA_MISSING',
      `${purpose} needs Java ${minMajor} or newer, and none was found ` +
        `(tried: ${tried.length > 0 ? tried.join('; ') : 'nothing'}). ` +
        `Install a JDK ${minMajor}+ (e.g. apt-get install openjdk-${minMajor}-jre-headless) or point JAVA_HOME at one.`,
    );
  }
}

/** `mvn` is not installed or not on PATH. */
export class MavenNotFoundError extends LocalStackError {
  override readonly name = 'MavenNotFoundError';
  constructor(readonly command: string) {
    super(
      'MAVEN_MISSING',
      `Maven ("${command}") was not found; it fetches Kafka and Apicurio from Maven Central. ` +
        `Install it (apt-get install maven) or pass the mvn path in the stack options.`,
    );
  }
}

/** A Maven fetch exited non-zero; `outputTail` holds the last lines it printed. */
export class ArtifactFetchError extends LocalStackError {
  override readonly name = 'ArtifactFetchError';
  constructor(
    readonly artifact: string,
    readonly exitCode: number | null,
    readonly outputTail: string,
  ) {
    super(
      'FETCH_FAILED',
      `fetching ${artifact} failed (mvn exit code ${exitCode ?? 'signal'}). Last lines of its output:\n${outputTail}`,
    );
  }
}

/** A port the stack needs is taken by a process that is not ours. */
export class PortInUseError extends LocalStackError {
  override readonly name = 'PortInUseError';
  constructor(
    readonly component: string,
    readonly port: number,
    readonly host: string,
  ) {
    super(
      'PORT_IN_USE',
      `port ${port} in use by another process (${component} needs ${host}:${port}). ` +
        `Stop that process or configure another port for ${component}.`,
    );
  }
}

/** The process died while starting (bad config, JVM error, ...). */
export class ProcessStartError extends LocalStackError {
  override readonly name = 'ProcessStartError';
  constructor(
    readonly component: string,
    readonly logPath: string,
    readonly logTail: string,
    detail: string,
  ) {
    super('START_FAILED', `${component} ${detail}. See ${logPath}; last lines:\n${logTail}`);
  }
}

/** The process runs but did not become ready in time. */
export class ReadinessTimeoutError extends LocalStackError {
  override readonly name = 'ReadinessTimeoutError';
  constructor(
    readonly component: string,
    readonly timeoutMs: number,
    readonly logPath: string,
    readonly logTail: string,
    readonly lastProbeError: string | undefined,
  ) {
    super(
      'NOT_READY',
      `${component} was not ready after ${Math.round(timeoutMs / 1000)} s` +
        (lastProbeError ? ` (last check: ${lastProbeError})` : '') +
        `; it is left running (down() stops it). See ${logPath}; last lines:\n${logTail}`,
    );
  }
}

/** A process ignored SIGTERM and SIGKILL. */
export class ProcessStopError extends LocalStackError {
  override readonly name = 'ProcessStopError';
  constructor(
    readonly component: string,
    readonly pid: number,
  ) {
    super('STOP_FAILED', `${component} (pid ${pid}) did not exit after SIGTERM and SIGKILL`);
  }
}

/** Another process holds the stack lock for too long. */
export class StackLockedError extends LocalStackError {
  override readonly name = 'StackLockedError';
  constructor(
    readonly lockPath: string,
    readonly holderPid: number | undefined,
  ) {
    super(
      'LOCKED',
      `another tillwatch stack command (pid ${holderPid ?? 'unknown'}) holds ${lockPath}; ` +
        `wait for it, or delete the file if that process is gone`,
    );
  }
}

/** The Kafka data directory was formatted by a newer Kafka than the one configured. */
export class DataIncompatibleError extends LocalStackError {
  override readonly name = 'DataIncompatibleError';
  constructor(message: string) {
    super('DATA_INCOMPATIBLE', message);
  }
}
