import type { InvocationContext } from '@azure/functions';
import { AsyncLocalStorage } from 'node:async_hooks';

/**
 * The log of the invocation that is running, for code deep in a request (metering) that has no
 * context of its own: lines written through the context reach Application Insights tied to their
 * invocation (operation id), where console output is at best a host-level trace.
 */
const current = new AsyncLocalStorage<InvocationContext>();

/** Runs a trigger's handler with its context as the current invocation. */
export function withInvocationLog<TInput, TResult>(
  handler: (input: TInput, context: InvocationContext) => Promise<TResult>,
): (input: TInput, context: InvocationContext) => Promise<TResult> {
  return (input, context) => current.run(context, () => handler(input, context));
}

type Level = 'info' | 'warn' | 'error';

const write = (level: Level) => (line: string): void => {
  const context = current.getStore();
  if (context) context[level](line);
  else console[level](line);
};

/** Lines for the current invocation's log, or for the console outside one. */
export const invocationLog: Readonly<Record<Level, (line: string) => void>> = { info: write('info'), warn: write('warn'), error: write('error') };
