import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { z } from 'zod';

/**
 * What `npm start` tells other local tools about itself (the project CLI, scripts): where the app
 * answers, its function key and its storage. Written into the state folder (`.azurite/` unless
 * LOCAL_STATE_DIR says otherwise) once the stack is ready, removed when it stops.
 */
export const RUNNING_STACK_FILE = 'running-stack.json';

const runningStackSchema = z.object({
  pid: z.number().int().positive(),
  startedAt: z.string(),
  /** `http://localhost:7071`: the functions are under `${appUrl}/api`. */
  appUrl: z.string(),
  functionKey: z.string(),
  /** For admin routes (GET /api/usage); absent in files written before it was kept. */
  masterKey: z.string().optional(),
  /** The local Azurite's; absent when the app uses a real storage account. */
  storageConnectionString: z.string().optional(),
  containers: z.object({ images: z.string(), inbox: z.string(), outputs: z.string(), jobs: z.string() }),
});

export type RunningStack = z.infer<typeof runningStackSchema>;

export function writeRunningStack(stateDir: string, stack: RunningStack): string {
  mkdirSync(stateDir, { recursive: true });
  const path = join(stateDir, RUNNING_STACK_FILE);
  // Written whole and renamed into place, so a reader never sees half a file; only the owner may
  // read it, since it holds the keys.
  const temporary = `${path}.${process.pid}.tmp`;
  writeFileSync(temporary, `${JSON.stringify(stack, null, 2)}\n`, { mode: 0o600 });
  renameSync(temporary, path);
  return path;
}

/** Removes the file if it still describes the process `pid` (a newer stack may have replaced it). */
export function removeRunningStack(stateDir: string, pid: number): void {
  const path = join(stateDir, RUNNING_STACK_FILE);
  try {
    if (runningStackSchema.parse(JSON.parse(readFileSync(path, 'utf8'))).pid === pid) rmSync(path, { force: true });
  } catch {
    // Missing or unreadable: nothing of ours to remove.
  }
}

/** The running stack, or an error that says how to get one. */
export function readRunningStack(stateDir: string): RunningStack {
  const path = join(stateDir, RUNNING_STACK_FILE);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    throw new Error(`No local stack is running (${path} does not exist). Start one with \`npm start\` in the project folder, in a terminal of its own.`);
  }
  const parsed = runningStackSchema.safeParse(safeJson(text));
  if (!parsed.success) throw new Error(`${path} is not what npm start writes; stop the stack, delete the file and run \`npm start\` again.`);
  if (!isAlive(parsed.data.pid)) {
    throw new Error(`The stack described by ${path} (pid ${parsed.data.pid}) is not running any more: it was stopped without cleaning up. Start it again with \`npm start\`.`);
  }
  return parsed.data;
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error: unknown) {
    // EPERM: it exists but belongs to someone else.
    return error instanceof Error && 'code' in error && error.code === 'EPERM';
  }
}
