/** Where a command writes, so commands run the same in a terminal and in tests. */
export interface CliIo {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  readonly env: NodeJS.ProcessEnv;
  /** The terminal behind stderr, when stderr is one: long work draws progress bars on it, plain lines otherwise. */
  readonly tty?: NodeJS.WritableStream;
}

/** Exit codes of the `custodian` binary. */
export const EXIT = {
  ok: 0,
  /** A failure not caused by the input: store unreachable, internal fault. */
  failure: 1,
  /** Bad input: usage, validation, unknown purpose, bad configuration. */
  badInput: 2,
  /** `consent check` answered: processing is not allowed. */
  notAllowed: 3,
  /** `audit verify` / `audit verify-bundle` found the log or the bundle not to verify. */
  verifyFailed: 4,
  /** `check` found drift: personal data the data map does not declare, or declared fields that vanished. */
  drift: 5,
} as const;

/** The process's own streams. */
export const processIo: CliIo = {
  stdout: (t) => process.stdout.write(t),
  stderr: (t) => process.stderr.write(t),
  env: process.env,
  ...(process.stderr.isTTY ? { tty: process.stderr } : {}),
};

/** Prints a JSON value on stdout. */
export function printJson(io: CliIo, value: unknown): void {
  io.stdout(JSON.stringify(value, null, 2) + '\n');
}
