/**
 * `npm run -s imagegen -- <command>`: everyday work with the stack `npm start` runs, from any folder
 * inside the project. It finds the stack through the file npm start writes into `.azurite/`.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { parseArgs } from 'node:util';

import { isTicketInputName } from '../src/domain/inbox-edits';
import { download } from './download';
import { manifestOf, putIntoInbox, REQUEST_OPTIONS } from './inbox';
import { listRecent } from './list';
import { createMask, parseMaskArea } from './mask';
import { callerPath, connectToStack } from './stack';

const USAGE = `usage: npm run -s imagegen -- <command>

  env                                  export lines for APP, KEY, MASTER_KEY and AZURE_STORAGE_CONNECTION_STRING:
                                         eval "$(npm run -s imagegen -- env)"
  put <file> --prompt <text> [--name <inbox name>] [--quality low] [--size 1024x1024] [--model m] [--n 2]
      [--output_format jpeg] [--background transparent] [--input_fidelity high] [--no-wait] [--timeout 120]
                                       upload into the inbox with the request in the metadata, wait for
                                       the edit and print its manifest
  manifest <inbox name> [--wait]       the manifest of the upload's current version
  list [--limit 10]                    the newest jobs and results
  download <inbox name | container/blob | link> [--out <folder or file>]
                                       save the results of an upload, one blob, or a SAS link
  mask <image> --area x,y,width,height [--area ...] --out <file>
                                       a mask PNG for the image: transparent (editable) inside the areas`;

class UsageError extends Error {}

const print = (line: string): void => void process.stdout.write(`${line}\n`);
const note = (line: string): void => void process.stderr.write(`${line}\n`);

async function run(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'env': {
      args(rest, {}, 0);
      const { stack } = connectToStack();
      const exports = {
        APP: stack.appUrl,
        KEY: stack.functionKey,
        ...(stack.masterKey ? { MASTER_KEY: stack.masterKey } : {}),
        ...(stack.storageConnectionString ? { AZURE_STORAGE_CONNECTION_STRING: stack.storageConnectionString } : {}),
      };
      for (const [name, value] of Object.entries(exports)) print(`export ${name}=${shellQuote(value)}`);
      return 0;
    }
    case 'put': {
      const requestOptions = Object.fromEntries(REQUEST_OPTIONS.map((name) => [name, { type: 'string' as const }]));
      const { values, positionals } = args(rest, { ...requestOptions, name: { type: 'string' }, 'no-wait': { type: 'boolean' }, timeout: { type: 'string' } }, 1);
      const file = positionals[0] ?? '';
      const name = typeof values['name'] === 'string' ? values['name'] : basename(file);
      // A ticket carries its own request, and a ticket's input is not edited by itself.
      const ticketInput = isTicketInputName(name);
      if (typeof values['prompt'] !== 'string' && !name.endsWith('.json') && !ticketInput) {
        throw new UsageError('put needs --prompt "<what to change>" (unless it is a .json ticket, or a ticket\'s input under a "_" folder).');
      }
      const request = Object.fromEntries(REQUEST_OPTIONS.flatMap((option) => (typeof values[option] === 'string' ? [[option, values[option]]] : [])));
      const found = await putIntoInbox(connectToStack(), file, {
        name,
        request,
        wait: values['no-wait'] !== true && !ticketInput,
        timeoutInMs: seconds(values['timeout']) * 1000,
        print: note,
      });
      if (!found) return 0;
      print(JSON.stringify(found.manifest, null, 2));
      return found.manifest.status === 'succeeded' ? 0 : 1;
    }
    case 'manifest': {
      const { values, positionals } = args(rest, { wait: { type: 'boolean' }, timeout: { type: 'string' } }, 1);
      const found = await manifestOf(connectToStack(), positionals[0] ?? '', values['wait'] === true ? { timeoutInMs: seconds(values['timeout']) * 1000, print: note } : undefined);
      print(JSON.stringify(found.manifest, null, 2));
      return 0;
    }
    case 'list': {
      const { values } = args(rest, { limit: { type: 'string' } }, 0);
      const limit = typeof values['limit'] === 'string' ? wholeNumber('--limit', values['limit']) : 10;
      for (const line of await listRecent(connectToStack(), limit)) print(line);
      return 0;
    }
    case 'download': {
      const { values, positionals } = args(rest, { out: { type: 'string' } }, 1);
      for (const saved of await download(connectToStack(), positionals[0] ?? '', typeof values['out'] === 'string' ? values['out'] : undefined)) {
        print(`saved ${saved.path} (${saved.bytes} bytes)`);
      }
      return 0;
    }
    case 'mask': {
      const { values, positionals } = args(rest, { area: { type: 'string', multiple: true }, out: { type: 'string' } }, 1);
      const areas = (Array.isArray(values['area']) ? values['area'] : []).map((area) => parseMaskArea(String(area)));
      if (areas.length === 0) throw new UsageError('mask needs at least one --area x,y,width,height: the part of the image to change.');
      if (typeof values['out'] !== 'string') throw new UsageError('mask needs --out <file.png>.');
      const mask = await createMask(await readFile(callerPath(positionals[0] ?? '')), areas);
      await writeFile(callerPath(values['out']), mask);
      print(`wrote ${values['out']} (${mask.length} bytes): transparent inside ${areas.map((area) => `${area.x},${area.y},${area.width},${area.height}`).join(' and ')}`);
      return 0;
    }
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      print(USAGE);
      return command === undefined ? 2 : 0;
    default:
      throw new UsageError(`unknown command "${command}".`);
  }
}

type OptionSpec = Record<string, { type: 'string' | 'boolean'; multiple?: boolean }>;

function args(argv: readonly string[], options: OptionSpec, positionalCount: number) {
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], options, allowPositionals: true, strict: true });
  } catch (error: unknown) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
  if (parsed.positionals.length !== positionalCount) {
    throw new UsageError(positionalCount === 0 ? `unexpected "${parsed.positionals.join(' ')}".` : `expected ${positionalCount} argument(s), got ${parsed.positionals.length}.`);
  }
  return parsed;
}

function seconds(value: unknown): number {
  return typeof value === 'string' ? wholeNumber('--timeout', value) : 120;
}

function wholeNumber(name: string, value: string): number {
  if (!/^\d+$/.test(value) || Number(value) === 0) throw new UsageError(`${name} takes a whole number above 0, not "${value}".`);
  return Number(value);
}

const shellQuote = (value: string): string => `'${value.replace(/'/g, `'\\''`)}'`;

// `... | head` closes the pipe early; that ends the output, not the command.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw error;
});

run(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    // The storage SDK's messages carry the whole HTTP exchange; a missing blob needs one line.
    const missing = error instanceof Error && 'statusCode' in error && error.statusCode === 404 && 'request' in error;
    note(`imagegen: ${missing ? 'no such blob (check the container and the name).' : error instanceof Error ? error.message : String(error)}`);
    if (error instanceof UsageError) note(USAGE);
    process.exitCode = error instanceof UsageError ? 2 : 1;
  },
);
