import type { Command } from 'commander';

/**
 * The exit code of a command line that cannot run as written: an unknown option, a missing
 * or invalid argument, no command at all. The same code as an invalid config or option
 * value, so a caller (a provisioning script, systemd) can tell "called wrongly" (2) from "ran
 * and failed" (1).
 */
export const USAGE_EXIT_CODE = 2;

/**
 * Makes commander exit 2 on a usage error instead of its default 1; `--help` and
 * `--version` still exit 0. Call it before adding subcommands: they inherit it.
 */
export function exitTwoOnUsageError<T extends Command>(program: T): T {
  program.exitOverride((error) => process.exit(error.exitCode === 0 ? 0 : USAGE_EXIT_CODE));
  return program;
}
