// Runs one CLI command in process and returns what it printed.
import { Writable } from 'node:stream';
import { cliCommand } from '../../cli/commands.js';

export async function runCli(argv: string[], env: NodeJS.ProcessEnv = {}): Promise<string> {
  let text = '';
  const out = new Writable({
    write(chunk: Buffer, _e, done) {
      text += chunk.toString();
      done();
    },
  });
  await cliCommand(argv, out, env);
  return text;
}
