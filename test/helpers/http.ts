import { HttpRequest, InvocationContext } from '@azure/functions';

export function jsonRequest(url: string, body: unknown, headers: Record<string, string> = {}): HttpRequest {
  return new HttpRequest({
    method: 'POST',
    url,
    headers: { 'content-type': 'application/json', ...headers },
    body: { string: typeof body === 'string' ? body : JSON.stringify(body) },
  });
}

/** A real InvocationContext whose log lines are kept for assertions. */
export function makeContext(): InvocationContext & { logs: unknown[][] } {
  const logs: unknown[][] = [];
  const context = new InvocationContext({ invocationId: 'invocation-1', functionName: 'test', logHandler: (level, ...args) => logs.push([level, ...args]) });
  return Object.assign(context, { logs });
}
