/**
 * The `msb-agentd` command line (commander@14): `serve`, `exec`, `forward`, `cp`, `ping`. Exit statuses: `exec`
 * returns the remote exit code (128+N for a signal), 127/126/125 for spawn failures, 255 when the
 * agent is unreachable or the protocol breaks; bad usage exits 2.
 */

import { Command, CommanderError, Option } from 'commander';

import { VERSION } from '../version.js';
import { UsageError } from './usage-error.js';

const collectRepeated = (value: string, previous: string[] = []): string[] => [...previous, value];

export function buildProgram(): Command {
  const program = new Command('msb-agentd')
    .description('In-sandbox process agent speaking the microsandbox agent protocol (generation 7)')
    .version(VERSION, '--version')
    .helpOption('-h, --help')
    .exitOverride()
    .showHelpAfterError('(run msb-agentd --help for usage)');

  program
    .command('serve')
    .description('run the agent (default: unix socket at the default address)')
    .addOption(new Option('--listen <address>', 'unix:PATH or tcp:HOST:PORT (repeatable)').argParser(collectRepeated))
    .option('--allow-remote', 'allow TCP on non-loopback addresses (no authentication!)')
    .option('--serial <device>', 'serve raw frames on a serial character device')
    .option('--stdio', 'serve raw frames on stdin/stdout')
    .option('--vsock <port>', 'serve raw frames on vsock connections to this port')
    .option('--user <spec>', 'default exec user: uid, name, uid:gid or name:group')
    .option('--cwd <dir>', 'default exec working directory')
    .option('--security-profile <profile>', 'default | restricted')
    .option('--heartbeat-file <path>', 'write the heartbeat JSON here every second')
    .option('--after-exit <policy>', 'detach | kill-group | wait: leftovers holding output after the drain')
    .option('--drain-ms <n>', 'keep reading output this long after the leader exits (default 100)')
    .option('--grace-ms <n>', 'between the first signal and SIGKILL (default 5000)')
    .option('--subreaper', 'become a child subreaper and reap adopted orphans')
    .option('--own-clock', 'let core.clock.sync set the realtime clock')
    .option('--ignore-shutdown', 'ignore core.shutdown')
    .option('--log-level <level>', 'error | warn | info | debug', 'info')
    .option('--log-format <format>', 'text | json', 'text')
    .action(async (flags) => {
      const { serve } = await import('./serve.js');
      process.exitCode = await serve(flags);
    });

  program
    .command('exec')
    .description('run a command through a running agent')
    .option('--connect <address>', 'unix:PATH or tcp:HOST:PORT (default: the default socket)')
    .option('-i, --interactive', 'forward local stdin')
    .option('-t, --tty', 'allocate a PTY (implies -i); the local terminal goes raw')
    .option('-u, --user <spec>', 'run as this user')
    .option('-w, --workdir <dir>', 'working directory')
    .addOption(new Option('-e, --env <K=V>', 'environment entry (repeatable)').argParser(collectRepeated))
    .argument('<cmd>', 'program')
    .argument('[args...]', 'arguments')
    .action(async (cmd: string, args: string[], flags) => {
      const { execCommand } = await import('./exec.js');
      process.exitCode = await execCommand(cmd, args, flags);
    });

  program
    .command('forward')
    .description('forward a local port to a host:port reached from inside the guest')
    .option('--connect <address>', 'unix:PATH or tcp:HOST:PORT (default: the default socket)')
    .argument('<spec>', 'LOCAL_PORT:GUEST_HOST:GUEST_PORT (LOCAL_PORT 0 picks a free port)')
    .action(async (spec: string, flags) => {
      const { forwardCommand } = await import('./forward.js');
      process.exitCode = await forwardCommand(spec, flags);
    });

  program
    .command('cp')
    .description('copy a file between this machine and the guest (guest paths are guest:PATH; - is stdin/stdout)')
    .option('--connect <address>', 'unix:PATH or tcp:HOST:PORT (default: the default socket)')
    .option('--progress', 'always show a progress bar (default: on a terminal, for files of 1 MiB or more)')
    .option('--no-progress', 'never show a progress bar')
    .argument('<src>', 'source: a local path, guest:PATH, or - (stdin)')
    .argument('<dst>', 'destination: a local path, guest:PATH, or - (stdout)')
    .action(async (src: string, dst: string, flags) => {
      const { cpCommand } = await import('./cp.js');
      process.exitCode = await cpCommand(src, dst, flags);
    });

  program
    .command('ping')
    .description('measure the round trip to a running agent')
    .option('--connect <address>', 'unix:PATH or tcp:HOST:PORT (default: the default socket)')
    .action(async (flags) => {
      const { pingCommand } = await import('./ping.js');
      process.exitCode = await pingCommand(flags);
    });
  return program;
}

export async function main(argv: string[] = process.argv): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version exit 0; everything else is a usage error.
      process.exitCode = err.exitCode === 0 ? 0 : 2;
      return;
    }
    if (err instanceof UsageError) {
      process.stderr.write(`msb-agentd: ${err.message}\n(run msb-agentd --help for usage)\n`);
      process.exitCode = 2;
      return;
    }
    process.stderr.write(`msb-agentd: ${(err as Error).message}\n`);
    process.exitCode = 1;
  }
}
