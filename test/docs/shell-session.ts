import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export interface BlockRun {
  readonly ok: boolean;
  readonly stdout: string;
  readonly stderr: string;
  /** Why it did not end well: the shell exited (a command failed), or it ran out of time. */
  readonly failure?: string;
}

/**
 * One bash, like a terminal a reader pastes the blocks of a page into, one after the other: what a
 * block sets (variables, the current folder) is there for the next. Each block runs with `set -euo
 * pipefail`, so a failing command or an undefined variable fails it (the shell then exits, and the
 * session is over).
 */
export class ShellSession {
  private readonly child: ChildProcessWithoutNullStreams;
  private stdout = '';
  private stderr = '';
  private blocks = 0;
  private exited = false;

  constructor(
    private readonly cwd: string,
    env: NodeJS.ProcessEnv,
  ) {
    // Its own process group, so a block that hangs can be stopped with everything it started.
    this.child = spawn('bash', ['--noprofile', '--norc'], { cwd, env, detached: true, stdio: 'pipe' });
    this.child.stdout.on('data', (chunk: Buffer) => (this.stdout += chunk.toString('utf8')));
    this.child.stderr.on('data', (chunk: Buffer) => (this.stderr += chunk.toString('utf8')));
    this.child.once('exit', () => (this.exited = true));
  }

  get alive(): boolean {
    return !this.exited;
  }

  /** Runs a shell script as if pasted; a `js` example runs as an ES module with node, from the session's folder. */
  async run(source: string, language: 'shell' | 'js', timeoutInMs: number): Promise<BlockRun> {
    if (this.exited) return { ok: false, stdout: '', stderr: '', failure: 'a block before it failed and ended the shell (this one may depend on it)' };
    const file = join(this.cwd, `.block-${++this.blocks}.${language === 'js' ? 'mjs' : 'sh'}`);
    writeFileSync(file, `${source}\n`);
    const done = `__docs_block_done_${randomBytes(8).toString('hex')}__`;
    // stdin is this session's script: a command in the block must not read the next blocks from it.
    const command = language === 'js' ? `node ${quote(file)} < /dev/null` : `source ${quote(file)} < /dev/null`;
    const [stdoutStart, stderrStart] = [this.stdout.length, this.stderr.length];
    this.child.stdin.write(`set -euo pipefail\n${command}\nset +euo pipefail\nprintf '\\n%s\\n' ${done}; printf '%s\\n' ${done} >&2\n`);

    const deadline = Date.now() + timeoutInMs;
    for (;;) {
      const out = this.stdout.slice(stdoutStart);
      const err = this.stderr.slice(stderrStart);
      const finished = out.indexOf(`\n${done}\n`);
      if (finished !== -1 && err.includes(`${done}\n`)) {
        return { ok: true, stdout: out.slice(0, finished), stderr: err.slice(0, err.indexOf(`${done}\n`)) };
      }
      if (this.exited) return { ok: false, stdout: out, stderr: err, failure: `a command failed (the shell exited with ${this.child.exitCode ?? this.child.signalCode})` };
      if (Date.now() > deadline) {
        this.kill();
        return { ok: false, stdout: out, stderr: err, failure: `it did not finish within ${timeoutInMs / 1000} s` };
      }
      await sleep(50);
    }
  }

  /** Ends the shell and anything still running in it. */
  async close(): Promise<void> {
    if (!this.exited) {
      this.child.stdin.end();
      const deadline = Date.now() + 5_000;
      while (!this.exited && Date.now() < deadline) await sleep(50);
    }
    this.kill();
  }

  private kill(): void {
    if (this.child.pid === undefined) return;
    try {
      process.kill(-this.child.pid, 'SIGKILL');
    } catch {
      // The group is gone already.
    }
  }
}

const quote = (value: string): string => `'${value.replace(/'/g, `'\\''`)}'`;
