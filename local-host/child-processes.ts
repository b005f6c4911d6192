import type { ChildProcess } from 'node:child_process';

// Children we started and must not outlive us. A child spawned without `detached` shares our process
// group, so a terminal's Ctrl-C reaches it anyway; a plain `kill <our pid>` or an uncaught error does
// not, hence these hooks. (A SIGKILL of the parent cannot be caught: children get a stdin guard too.)
const tracked = new Set<ChildProcess>();
const SIGNALS: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

function isRunning(child: ChildProcess): boolean {
  return child.pid !== undefined && child.exitCode === null && child.signalCode === null;
}

function killAll(): void {
  for (const child of tracked) {
    if (isRunning(child) && child.pid !== undefined) {
      try {
        process.kill(child.pid, 'SIGTERM');
      } catch {
        // Already gone between the check and the kill: nothing left to do.
      }
    }
  }
}

function onSignal(signal: NodeJS.Signals): void {
  killAll();
  // When nobody else handles the signal, our listener alone would keep the process alive: put the
  // default action back and re-raise it so the parent still dies the way the sender asked.
  if (process.listenerCount(signal) === 1) {
    uninstall();
    process.kill(process.pid, signal);
  }
}

function install(): void {
  process.on('exit', killAll);
  for (const signal of SIGNALS) process.on(signal, onSignal);
}

function uninstall(): void {
  process.off('exit', killAll);
  for (const signal of SIGNALS) process.off(signal, onSignal);
}

/** Kills `child` (SIGTERM) if this process exits or is told to stop first. Returns the undo. */
export function killWithParent(child: ChildProcess): () => void {
  if (tracked.size === 0) install();
  tracked.add(child);
  const release = (): void => {
    if (tracked.delete(child) && tracked.size === 0) uninstall();
  };
  child.once('exit', release);
  return release;
}
